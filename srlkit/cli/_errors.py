"""The one error boundary: any exception that reaches the CLI becomes one line and an exit code.

Library code raises `srlkit.errors.SrlkitError` (and its typed subclasses) with a message that
says what to do; those print as they are (exit 2). Errors from the operating system, JSON,
safetensors, pickle and Unicode that a library call let through still get one line naming the
path and what to do (exit 2); a save that safetensors or torch could not write (a full disk) says
so, not that a file is damaged. Anything else is a bug: one line that says how to see the
traceback (exit 1). `SRLKIT_DEBUG=1` shows the traceback of any error instead.
"""

from __future__ import annotations

import errno
import json
import os
import pickle

DEBUG_ENV = "SRLKIT_DEBUG"


def one_line(msg: object) -> str:
    """Whitespace collapsed, and code points no terminal can print escaped (a lone surrogate
    from a mistyped path must not crash the printing of its own error)."""
    text = " ".join(str(msg).split())
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def debug() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "no")


def _os_error(e: OSError) -> str:
    where = e.filename if e.filename is not None else "a file"
    if e.filename2 is not None:
        where = f"{e.filename} -> {e.filename2}"
    if isinstance(e, FileNotFoundError):
        return f"file not found: {where} (check the path)"
    if isinstance(e, PermissionError):
        return f"permission denied: {where}; make it readable/writable for you, or use another path"
    if isinstance(e, IsADirectoryError):
        return f"{where} is a folder where a file is needed; give a file path"
    if isinstance(e, NotADirectoryError):
        return f"{where}: part of this path is a file, not a folder; fix the path"
    if isinstance(e, FileExistsError):
        return f"{where} already exists; move it away or give another path"
    if e.errno == errno.ENOSPC:
        return f"no space left on the device writing {where}; free some space and run again"
    return f"cannot access {where}: {e.strerror or e}; check the path and its permissions"


def _failed_write(e: BaseException) -> str | None:
    """What to say when safetensors or torch.save could not write (e.g. a full disk), which they report
    in their own exception types; None for any other error."""
    text = str(e)
    if not ((type(e).__name__ == "SafetensorError" and ("while serializing" in text.lower() or "os error 28" in text))
            or (isinstance(e, RuntimeError) and "file write failed" in text)):
        return None
    full = "os error 28" in text or "no space left" in text.lower()
    return (("no space left on the device while saving" if full else f"a file could not be written ({text})")
            + "; free some space (or use another --out) and run again: `--resume` starts from the last complete "
            "checkpoint")


def describe(e: BaseException) -> tuple[str, int]:
    """(one-line message without 'error: ', exit code) for an exception that reached the CLI."""
    from srlkit.errors import SrlkitError

    if isinstance(e, SrlkitError):
        return one_line(e), 2
    if isinstance(e, OSError):
        return one_line(_os_error(e)), 2
    if isinstance(e, json.JSONDecodeError):
        return one_line(f"a file is not valid JSON ({e.msg}, line {e.lineno}); restore it or regenerate it with "
                        f"the srlkit command that wrote it ({DEBUG_ENV}=1 shows which)"), 2
    if isinstance(e, UnicodeDecodeError):
        return one_line(f"a file is not UTF-8 text ({e.reason} at byte {e.start}); give a text file of the kind "
                        f"the command reads ({DEBUG_ENV}=1 shows which)"), 2
    if isinstance(e, UnicodeEncodeError):
        return one_line(f"text with an invalid code point ({e.reason}, e.g. a lone surrogate) cannot be written; "
                        f"remove it from the input ({DEBUG_ENV}=1 shows where)"), 2
    if (write := _failed_write(e)) is not None:  # a save that could not be written is not a damaged file
        return one_line(write), 2
    if isinstance(e, (pickle.UnpicklingError, EOFError)) or type(e).__name__ == "SafetensorError":
        kind = "safetensors" if type(e).__name__ == "SafetensorError" else "pickle (.pt)"
        return one_line(f"a {kind} file is damaged or truncated ({e}); restore it, or start from an earlier "
                        f"checkpoint ({DEBUG_ENV}=1 shows which)"), 2
    if isinstance(e, MemoryError):
        return "out of memory; lower the batch size, --limit or --shard-rows", 1
    return one_line(f"internal error: {type(e).__name__}: {e}; rerun with {DEBUG_ENV}=1 for the traceback and "
                    "report it"), 1
