"""Fuzz: every command fed random bad paths, flags and files finds no traceback.

Each case is drawn from a seeded generator (the same cases on every run) and runs in-process
through `srlkit.cli.main`. Whatever the input, the command either succeeds or fails with exit
code 2 and one `error:` line; never a traceback, never an "internal error" (exit 1), and no
file that was there before changes.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from tests.helpers import ASSETS
from tests.helpers.hostile import assert_intact, snapshot

# per command; SRLKIT_FUZZ_CASES / SRLKIT_FUZZ_SEED draw more or other cases (the suite uses the defaults)
CASES = int(os.environ.get("SRLKIT_FUZZ_CASES", "24"))
SEED = os.environ.get("SRLKIT_FUZZ_SEED", "")
NUMBERS = ["-1", "0", "nan", "inf", "-inf", "1e400", "abc", "", "99999999999999999999", "0.5", "3"]
WORDS = ["", "zzz", "../x", "a/b", "srl", "rlvr", "\udcff", "-", "--", "x" * 300]


class Junk:
    """Bad paths and files, made under `root`: missing, empty, binary, wrong JSON, folders, ..."""

    def __init__(self, root: Path, rng: random.Random):
        self.root, self.rng, self.n = root, rng, 0

    def _new(self, suffix: str = "") -> Path:
        self.n += 1
        return self.root / f"j{self.n}{suffix}"

    KINDS = ("missing", "empty", "binary", "json", "folder", "under_file", "surrogate", "junk_folder", "manifest",
             "lines", "toml")

    def path(self, suffix: str = "", kinds: tuple[str, ...] = KINDS) -> str:
        kind = self.rng.choice(kinds)
        p = self._new(suffix)
        if kind == "empty":
            p.write_bytes(b"")
        elif kind == "binary":
            p.write_bytes(bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 400))))
        elif kind == "json":
            p.write_text(self.rng.choice(['[1, 2]', '"s"', '{"results": 5}', '{"stage": "eval"}', "null", "{",
                                          '{"problem": null, "answer": [1]}']))
        elif kind == "folder":
            p.mkdir()
        elif kind == "under_file":
            p.write_text("x")
            p = p / f"sub{suffix}"
        elif kind == "surrogate":
            p = self.root / f"bad\udcff{self.n}{suffix}"
        elif kind == "junk_folder":
            p.mkdir()
            (p / "metrics.jsonl").write_bytes(b"\xff\xfe[1]\n{}\n")
            (p / "config.toml").write_text("= broken")
            (p / "srl").mkdir()
            (p / "srl" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 not really")
        elif kind == "manifest":
            p.mkdir()
            (p / "manifest.json").write_text(self.rng.choice(['{"stage": "decompose"}', "[]", "{bad",
                                                              '{"stage": "decompose", "files": {"x": {"sha256": "0"}}}',
                                                              '{"stage": "train", "complete": false}']))
            (p / "README.md").write_text("# x")
        elif kind == "lines":
            p.write_text("\n".join(self.rng.choice(['{"problem": 1}', "[", '{"solution": "1. a"}', "7", '"\\ud800"',
                                                    '{"problem": "q", "solution": "\\ud800 1. a\\n2. b"}'])
                                   for _ in range(5)))
        elif kind == "toml":
            p.write_text(self.rng.choice(['[train]\nseed = "x"', "name = 5", "[[[", 'name = "../up"',
                                          '[train.phases.srl]\nlr = -1', '[decompose]\nval_size = nan']))
        return str(p)

    def number(self) -> str:
        return self.rng.choice(NUMBERS)

    def word(self) -> str:
        return self.rng.choice(WORDS)


def _decompose(j: Junk, r: random.Random) -> list[str]:
    args = ["decompose", j.path(r.choice([".jsonl", ".json", ".csv", ".parquet", ""])), "--out", j.path()]
    for flag in r.sample(["--val-size", "--limit", "--shard-rows", "--min-step-chars", "--history"], 2):
        args += [flag, j.number()]
    if r.random() < 0.3:
        args += ["--template", j.path(".toml")]
    if r.random() < 0.3:
        args += [r.choice(["--preset", "--steps", "--targets", "--problem-col"]), j.word()]
    return args


def _good_source_bad_rest(j: Junk, r: random.Random) -> list[str]:
    """A valid source, so the bad part is the output or an option."""
    args = ["decompose", str(ASSETS / "numbered.jsonl"), "--out", j.path()]
    if r.random() < 0.5:
        args += [r.choice(["--val-size", "--shard-rows", "--max-row-bytes"]), j.number()]
    return args


def _inspect(j: Junk, r: random.Random) -> list[str]:
    return ["inspect", j.path(), "-n", j.number(), "--table", r.choice(["srl", "rlvr", j.word()])]


def _embed(j: Junk, r: random.Random) -> list[str]:
    return ["embed", j.path(), "--dtype", r.choice(["float16", j.word()]), "--batch-size", j.number()]


def _train(j: Junk, r: random.Random, model: Path, data: Path) -> list[str]:
    kind = r.choice(["config", "data", "out", "resume", "set"])
    args = ["train", "--model", str(model)]
    if kind == "config":
        args += ["--config", j.path(".toml"), "--dry-run"]
    elif kind == "data":
        args += ["--data", j.path(), "--out", j.path()]
    elif kind == "out":  # an --out no run may use (a new folder would start a real run)
        bad = tuple(k for k in Junk.KINDS if k not in ("missing", "folder", "surrogate"))
        args += ["--data", str(data), "--out", j.path(kinds=bad), "--max-steps", j.number()]
    elif kind == "resume":
        args += ["--data", str(data), "--out", j.path(), "--resume"]
    else:
        key = r.choice(["train.phases.srl.lr", "train.rollout.temperature", "train.seed", "name",
                        "train.rollout.num_generations", "train.curriculum", "decompose.val_size"])
        args += ["--set", f"{key}={j.number() if r.random() < 0.7 else j.word()}", "--dry-run",
                 r.choice(["--world-size", "--gpu-gib"]), j.number()]
    return args


def _eval(j: Junk, r: random.Random, model: Path) -> list[str]:
    models = [str(model) if r.random() < 0.5 else j.path()]
    bench = j.path(r.choice([".jsonl", ".json", ".parquet"]))
    args = ["eval", *models, "--bench", bench, "--k", j.number(), "--max-new-tokens", "2"]
    if r.random() < 0.5:
        args += ["--out", j.path(".json")]
    return args


def _report(j: Junk, r: random.Random) -> list[str]:
    args = ["report", j.path()]
    if r.random() < 0.5:
        args += ["--eval", j.path(".json")]
    if r.random() < 0.5:
        args += ["--out", j.path()]
    return args


def _push(j: Junk, r: random.Random) -> list[str]:
    if r.random() < 0.5:
        return ["push", j.path(), "--repo", r.choice(["me/x", j.word()]), "--dry-run"]
    return ["push", "--model", j.path(), "--repo", "me/x", "--dry-run"]


def _run(j: Junk, r: random.Random) -> list[str]:
    args = ["run", j.path(".toml"), "--dry-run"]
    if r.random() < 0.5:
        args += ["--force", j.word()]
    if r.random() < 0.5:
        args += ["--set", f"{r.choice(['name', 'train.seed', 'eval.k', 'embed.batch_size'])}={j.number()}"]
    return args


COMMANDS = ["decompose", "decompose_out", "inspect", "embed", "train", "eval", "report", "push", "run"]


@pytest.mark.parametrize("command", COMMANDS)
def test_random_bad_input_never_gives_a_traceback(cli, tmp_path, tiny_model_dir, tiny_data, command):
    rng = random.Random(f"fuzz-{command}{SEED}")
    junk = Junk(tmp_path, rng)
    make = {"decompose": _decompose, "decompose_out": _good_source_bad_rest, "inspect": _inspect, "embed": _embed,
            "train": lambda j, r: _train(j, r, tiny_model_dir, tiny_data),
            "eval": lambda j, r: _eval(j, r, tiny_model_dir), "report": _report, "push": _push, "run": _run}[command]
    cases = [make(junk, rng) for _ in range(CASES)]
    if rng.random() < 2:  # and the flags themselves: unknown, or missing their value
        cases += [[command.split("_")[0], "--bogus"], [command.split("_")[0], "--out"]]
    before = snapshot(tmp_path, tiny_data)
    for args in cases:
        res = cli(*args)
        shown = json.dumps(args)
        assert "Traceback" not in res.out + res.err, shown
        assert res.code in (0, 2), (shown, res.code, res.err)
        assert "internal error" not in res.err, (shown, res.err)
        if res.code:
            last = res.err.strip().splitlines()[-1]
            assert last.startswith("error: ") and res.err.count("error: ") == 1, (shown, res.err)
        assert_intact(before, after=shown)
