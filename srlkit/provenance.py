"""Where a run or a benchmark was measured: the CPU, the accelerator and the numerics libraries.

Training on CPU is exact on one machine (a resumed run matches an uninterrupted one bit for bit), but
another CPU or another library version rounds the matmuls differently; a different rounding changes a
sampled token after some steps, and the runs part from there. Runs and benchmarks record this block so a
reader can tell whether two figures are a paired measurement. No torch import: it reads what is loaded.
"""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

LIBS = ("torch", "transformers", "accelerate", "peft", "numpy")
_SIMD = (("amx_tile", "amx"), ("avx512f", "avx512"), ("avx2", "avx2"), ("asimd", "neon"))


def machine(cpuinfo: str | None = None) -> dict:
    """CPU model and SIMD class, the CUDA device when torch has one, and the libraries' versions.

    >>> m = machine("model name\\t: Some CPU\\nflags\\t\\t: fpu sse avx2 fma\\n")
    >>> m["cpu"], m["simd"]
    ('Some CPU', 'avx2')
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    libs: dict[str, str | None] = {}
    for lib in LIBS:
        try:
            libs[lib] = version(lib)
        except PackageNotFoundError:
            libs[lib] = None
    torch = sys.modules.get("torch")
    gpu = torch.cuda.get_device_name(0) if torch is not None and torch.cuda.is_available() else None
    return {"cpu": fields.get("model name") or platform.processor() or platform.machine(),
            "simd": "+".join(name for flag, name in _SIMD if flag in flags) or "none",
            "gpu": gpu, "libs": libs}


def differences(before: dict, now: dict) -> list[str]:
    """What changed between two `machine()` blocks, as short phrases ('cpu A -> B', 'transformers 5.1 -> 5.2').

    >>> a = {"cpu": "A", "simd": "avx2", "gpu": None, "libs": {"torch": "2.13.0"}}
    >>> differences(a, a | {"cpu": "B"}), differences(a, a)
    (['cpu A -> B'], [])
    """
    out = [f"{k} {before.get(k)} -> {now.get(k)}" for k in ("cpu", "simd", "gpu") if before.get(k) != now.get(k)]
    old, new = before.get("libs") or {}, now.get("libs") or {}
    out += [f"{k} {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return out
