"""The `srlkit` command line.

Each sub-command lives in its own module and imports its heavy dependencies
inside the command body, so `srlkit --help` never imports torch.
"""

from __future__ import annotations

import os
import sys

import typer

app = typer.Typer(
    name="srlkit",
    help="Supervised Reinforcement Learning (SRL) then RLVR, as one curriculum.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Registration order is the order `srlkit --help` lists them.
from srlkit.cli import decompose as _decompose  # noqa: E402,F401
from srlkit.cli import inspect as _inspect  # noqa: E402,F401
from srlkit.cli import embed as _embed  # noqa: E402,F401
from srlkit.cli import train as _train  # noqa: E402,F401
from srlkit.cli import eval as _eval  # noqa: E402,F401
from srlkit.cli import run as _run  # noqa: E402,F401
from srlkit.cli import report as _report  # noqa: E402,F401
from srlkit.cli import push as _push  # noqa: E402,F401


def _click_module():
    """The click that typer raises: recent typer vendors its own copy as `typer._click`."""
    try:
        from typer._click import exceptions  # type: ignore[import-not-found]
    except ImportError:  # older typer depends on click itself
        from click import exceptions
    return exceptions


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app; every failure becomes one line (see `srlkit.cli._errors`)."""
    from srlkit.cli._errors import debug, describe, one_line

    exc = _click_module()
    echo = typer.echo

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        rv = app(args=argv, standalone_mode=False)
    except exc.NoArgsIsHelpError as e:  # bare `srlkit` / `srlkit GROUP`
        echo(e.ctx.get_help())
        raise SystemExit(0) from None
    except exc.UsageError as e:
        cmd = e.ctx.command_path if e.ctx else "srlkit"
        echo(f"error: {one_line(e.format_message())} (see '{cmd} --help')", err=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        echo("interrupted", err=True)
        raise SystemExit(130) from None
    except exc.ClickException as e:  # click's own non-usage errors (e.g. a file option it opens)
        echo(f"error: {one_line(e.format_message())}", err=True)
        raise SystemExit(2) from None
    except Exception as e:  # the one error boundary
        if debug():
            raise
        msg, code = describe(e)
        echo(f"error: {msg}", err=True)
        raise SystemExit(code) from None
    if isinstance(rv, int) and rv:
        raise SystemExit(rv)
    sys.stdout.flush()
