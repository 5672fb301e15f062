"""User-facing errors: the CLI prints them as one line, never as a traceback."""


class SrlkitError(Exception):
    """A problem the user can fix. The message says what to do."""


class ConfigError(SrlkitError):
    """A bad option, recipe field or override."""


class DataError(SrlkitError):
    """A missing file, an unknown column, an unreadable source."""
