"""The CLI's error boundary (`srlkit/cli/_errors.py`): what a user reads when a write fails."""

from __future__ import annotations

import errno

from safetensors import SafetensorError

from srlkit.cli._errors import describe


def test_a_full_disk_while_saving_safetensors_says_free_space_not_damaged_file():
    # the message safetensors gave when this machine's disk filled during a checkpoint save
    e = SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    msg, code = describe(e)
    assert code == 2 and msg.startswith("no space left on the device while saving")
    assert "--resume" in msg and "damaged" not in msg


def test_a_failed_torch_save_is_a_write_error():
    msg, code = describe(RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed "
                                      "writing file data/3: file write failed"))
    assert code == 2 and msg.startswith("a file could not be written") and "internal error" not in msg


def test_a_damaged_safetensors_file_on_read_keeps_its_advice():
    msg, code = describe(SafetensorError("Error while deserializing header: HeaderTooLarge"))
    assert code == 2 and "damaged or truncated" in msg


def test_enospc_from_the_os_names_the_file():
    msg, code = describe(OSError(errno.ENOSPC, "No space left on device", "runs/x/state.json"))
    assert code == 2 and "no space left" in msg and "runs/x/state.json" in msg


def test_other_runtime_errors_stay_internal():
    msg, code = describe(RuntimeError("shape mismatch"))
    assert code == 1 and msg.startswith("internal error")
