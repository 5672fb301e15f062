"""math-verify under a hard per-item time limit, callable from any thread.

math-verify enforces its own timeouts with `signal.alarm`, which only works in the main
thread of the main process: from a trainer thread it raises or silently scores 0. So
its own timeouts are turned off (`parsing_timeout=None, timeout_seconds=None`) and the
checks run in worker processes that this pool kills and restarts when an item passes
its deadline. A pathological answer (a power tower, thousands of nested brackets)
costs at most `timeout` seconds and a worker restart. It never hangs the batch.

Workers come from a forkserver that has already imported math-verify, so a restart
costs a fork, not a fresh interpreter (spawn where forkserver does not exist).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

log = logging.getLogger(__name__)

READY = "ready"
STARTUP_TIMEOUT = 120.0  # first import of sympy on a loaded 2-core machine can be slow


@dataclass(frozen=True)
class Outcome:
    """One check: `correct` is None when no verdict was reached (see `error`)."""

    correct: bool | None
    error: str | None = None  # "timeout", "gold_unparsable", "worker_died", or the exception
    pred_parsed: bool = True


def _check(gold: str, pred: str) -> Outcome:
    from math_verify import parse, verify

    g = parse(gold, parsing_timeout=None, raise_on_error=True)
    if not g:
        return Outcome(None, "gold_unparsable")
    p = parse(pred, parsing_timeout=None, raise_on_error=True)
    if not p:
        return Outcome(False, pred_parsed=False)
    return Outcome(bool(verify(g, p, timeout_seconds=None, raise_on_error=True)))


def _worker_main(conn: Connection) -> None:
    """Worker loop: receive (index, gold, pred), send (index, Outcome); None stops it."""
    # Without alarms math-verify warns on every call; the pool enforces the limit instead.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    import math_verify  # noqa: F401  (import before announcing readiness)

    conn.send(READY)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        idx, gold, pred = msg
        try:
            out = _check(gold, pred)
        except Exception as e:  # noqa: BLE001  reported to the parent, counted there
            out = Outcome(None, f"{type(e).__name__}: {str(e)[:200]}")
        conn.send((idx, out))


def _context() -> mp.context.BaseContext:
    try:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["srlkit.rewards.verify_pool", "math_verify"])
        return ctx
    except ValueError:  # pragma: no cover - platforms without forkserver
        return mp.get_context("spawn")


_DYING: list = []  # killed workers, reaped later so that none is left a zombie


def _reap() -> None:
    for proc in list(_DYING):
        if not proc.is_alive():
            proc.join(0)
            _DYING.remove(proc)


class _Worker:
    def __init__(self, ctx: mp.context.BaseContext) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        try:
            ok = self.conn.poll(STARTUP_TIMEOUT) and self.conn.recv() == READY
        except (EOFError, OSError):
            ok = False
        if not ok:
            self.kill()
            # Usually a script without an `if __name__ == "__main__":` guard (workers re-import it).
            raise RuntimeError("math-verify worker process did not start; see its stderr above")

    def kill(self, wait: bool = False) -> None:
        """SIGKILL; by default without waiting: tearing down a process that holds gigabytes
        of sympy integers can take seconds, and the batch must not pay for it."""
        if self.proc.is_alive():
            self.proc.kill()
        if wait:
            self.proc.join(5)
        else:
            _DYING.append(self.proc)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(2)
        self.kill(wait=True)


def _shutdown(workers: list[_Worker]) -> None:
    for w in workers:
        w.kill()
    workers.clear()


class VerifyPool:
    """`check(items)` -> one Outcome per (gold, pred) pair, each bounded by `timeout` seconds."""

    def __init__(self, workers: int = 1, timeout: float = 5.0) -> None:
        self.size, self.timeout = max(1, int(workers)), float(timeout)
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()  # one batch at a time; callers may be any thread
        self.restarts = 0
        self._finalizer = weakref.finalize(self, _shutdown, self._workers)

    def _ensure(self) -> None:
        _reap()
        ctx = _context()
        while len(self._workers) < self.size:
            self._workers.append(_Worker(ctx))

    def check(self, items: list[tuple[str, str]]) -> list[Outcome]:
        with self._lock:
            self._ensure()
            return self._run(items)

    def _replace(self, w: _Worker) -> None:
        w.kill()
        self._workers.remove(w)
        self.restarts += 1
        self._ensure()

    def _run(self, items: list[tuple[str, str]]) -> list[Outcome]:
        results: list[Outcome | None] = [None] * len(items)
        todo = deque(range(len(items)))
        busy: dict[_Worker, tuple[int, float]] = {}
        while todo or busy:
            for w in list(self._workers):
                if todo and w not in busy:
                    i = todo.popleft()
                    try:
                        w.conn.send((i, items[i][0], items[i][1]))
                        busy[w] = (i, time.monotonic() + self.timeout)
                    except (OSError, BrokenPipeError):
                        results[i] = Outcome(None, "worker_died")
                        self._replace(w)
            if not busy:
                continue
            next_deadline = min(d for _, d in busy.values())
            ready = wait([w.conn for w in busy], timeout=max(0.0, next_deadline - time.monotonic()))
            for w in list(busy):
                i, deadline = busy[w]
                if w.conn in ready:
                    try:
                        j, out = w.conn.recv()
                        results[j] = out
                        del busy[w]
                        continue
                    except (EOFError, OSError):
                        results[i] = Outcome(None, "worker_died")
                elif time.monotonic() >= deadline:
                    results[i] = Outcome(None, "timeout")
                else:
                    continue
                del busy[w]
                self._replace(w)
        return [r if r is not None else Outcome(None, "lost") for r in results]

    def close(self) -> None:
        with self._lock:
            for w in self._workers:
                w.stop()
            self._workers.clear()
