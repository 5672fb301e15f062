"""User-facing errors: the CLI prints them as one line, never as a traceback."""


class SrlkitError(Exception):
    """A problem the user can fix. The message says what to do."""


class ConfigError(SrlkitError):
    """A bad option, recipe field or override."""


class DataError(SrlkitError):
    """A missing file, an unknown column, an unreadable source."""


class StageError(SrlkitError):
    """An output folder a stage may not write into, or an input that is not what the stage reads
    (see `srlkit.stage`: the manifest contract)."""


class ResumeError(SrlkitError):
    """`--resume` that would not continue the same run."""


class CheckpointError(SrlkitError):
    """A checkpoint that is damaged or does not match the run."""


def did_you_mean(word: str, options: "list[str] | tuple[str, ...]") -> str:
    """`; did you mean 'x'?` for the closest option, else the options, for one-line errors.

    >>> did_you_mean("penalti", ["penalty", "order"]), did_you_mean("zzz", ["b", "a"])
    ("; did you mean 'penalty'?", '; known: a, b')
    """
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; known: {', '.join(sorted(options))}" if options else ""
