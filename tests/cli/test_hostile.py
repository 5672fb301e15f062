"""Issue 21: srlkit used as a careless or hostile user would, through the CLI.

Every case checks the message, the exit code and that every file that was there before is
intact, byte for byte. Nothing lost (a stage writes only into an empty folder or its own
output, and deletes only files its manifest lists), nothing silently mixed (resume is the same
run or nothing; hashes, not only configs), and one line instead of a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import ASSETS
from tests.helpers import training as fx
from tests.helpers.hostile import assert_intact, plain_row, refused, rows_file, snapshot

NUMBERED = ASSETS / "numbered.jsonl"


def _decomposed(cli, out: Path, *extra) -> Path:
    res = cli("decompose", NUMBERED, "--out", out, *extra)
    assert res.code == 0, res.err
    return out


def _project(root: Path) -> Path:
    """A user's project folder: their card, their code under srl/ and rlvr/."""
    (root / "srl").mkdir(parents=True)
    (root / "rlvr").mkdir()
    (root / "README.md").write_text("# my project\n")
    (root / "srl" / "model.py").write_text("x = 1\n")
    (root / "rlvr" / "train.py").write_text("y = 2\n")
    return root


# --------------------------------------------------------------------------- data lost


def test_decompose_into_a_project_folder_is_refused(cli, tmp_path, monkeypatch):
    proj = _project(tmp_path / "proj")
    shutil.copy(NUMBERED, proj / "data.jsonl")
    snap = snapshot(proj)
    monkeypatch.chdir(proj)
    refused(cli("decompose", "data.jsonl", "--out", "."), "--out .", "overlap")  # its own source inside
    refused(cli("decompose", NUMBERED, "--out", "."), "--out . is not empty", "--force")
    refused(cli("decompose", NUMBERED, "--out", ".", "--force"), "README.md", "did not write")  # --force never replaces it
    assert_intact(snap)
    assert sorted(os.listdir(proj)) == ["README.md", "data.jsonl", "rlvr", "srl"]


@pytest.mark.parametrize("name,data", [("manifest.json", b'{"mine": true}\n'), ("rejects.parquet", b"PAR1 my own"),
                                       ("manifest.json", b"\x00\xff not json")])
def test_decompose_never_takes_a_users_file_for_its_own(cli, tmp_path, name, data):
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_bytes(data)
    snap = snapshot(out)
    res = cli("decompose", NUMBERED, "--out", out)
    refused(res, str(out))
    assert_intact(snap)


def test_force_writes_beside_other_files_and_never_touches_them(cli, tmp_path):
    out = tmp_path / "shared"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    snap = snapshot(out)
    _decomposed(cli, out, "--force")
    _decomposed(cli, out, "--val-size", "0.5")  # its own output now: replaced, the notes stay
    assert_intact(snap)
    m = json.loads((out / "manifest.json").read_text())
    assert m["stage"] == "decompose" and m["config"]["val_size"] == 0.5


def test_decompose_into_a_train_run_is_refused(cli, tmp_path, killed_run):
    run = tmp_path / "run"
    shutil.copytree(killed_run, run)
    snap = snapshot(run)
    refused(cli("decompose", NUMBERED, "--out", run), "srlkit train")
    assert_intact(snap)


def test_source_is_never_the_output(cli, tmp_path):
    sf = tmp_path / "sf"
    sf.mkdir()
    shutil.copy(NUMBERED, sf / "a.jsonl")
    snap = snapshot(sf)
    for src, out in ((sf, sf), (sf / "a.jsonl", sf), (sf, sf / "out")):
        refused(cli("decompose", src, "--out", out), "overlap")
    assert_intact(snap)
    assert sorted(p.name for p in sf.rglob("*")) == ["a.jsonl"]


def test_train_into_its_dataset_is_refused(cli, tmp_path, tiny_model_dir, tiny_data):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    snap = snapshot(data)
    fx.install()
    for out in (data, data / "run"):
        refused(cli(*fx.tiny_args(tiny_model_dir, data, out)), "overlap")
    other = tmp_path / "ds2"
    _decomposed(cli, other)
    refused(cli(*fx.tiny_args(tiny_model_dir, data, other)), "srlkit decompose")  # another dataset as --out
    assert_intact(snap)


def test_a_failing_replace_changes_nothing(cli, tmp_path, monkeypatch):
    """A read-only rlvr/ during a re-decompose: nothing is deleted, the manifest still verifies."""
    from srlkit import stage

    out = _decomposed(cli, tmp_path / "ds")
    snap = snapshot(out)
    real = os.replace

    def replace(src, dst, *a, **k):
        if "rlvr" in Path(src).parts and "ds" in Path(src).parts and ".srlkit-old" not in str(src):
            raise PermissionError(13, "Permission denied", str(src))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    refused(cli("decompose", NUMBERED, "--out", out, "--val-size", "0.5"), "nothing was changed")
    monkeypatch.undo()
    assert_intact(snap)
    assert not stage.problems(out, json.loads((out / "manifest.json").read_text())["files"])
    assert not [p for p in out.iterdir() if p.name.startswith(".srlkit-old")]


# --------------------------------------------------------------------------- silently wrong or mixed


def _other_data(tmp_path: Path, tiny_data: Path) -> Path:
    """A dataset with the same layout and one row fewer (other content)."""
    import polars as pl

    from srlkit import stage

    d = tmp_path / "other"
    shutil.copytree(tiny_data, d)
    f = d / "srl" / "train-00000-of-00001.parquet"
    pl.read_parquet(f).head(5).write_parquet(f)
    m = stage.read(d)
    stage.finish(d, "decompose", list(m["files"]), config={}, splits=m["splits"])
    return d


@pytest.mark.parametrize("change,needle", [
    (["--set", "train.phases.srl.lr=0.02"], "phases.srl.lr: 0.01 -> 0.02"),
    (["--curriculum", "srl,rlvr"], "curriculum"),
    (["--seed", "5"], "seed: 0 -> 5"),
    (["--no-lora"], "model.lora.enabled"),
    ("other-data", "data:"),
])
def test_resume_refuses_another_run(cli, tmp_path, killed_run, tiny_model_dir, tiny_data, change, needle):
    run = tmp_path / "run"
    shutil.copytree(killed_run, run)
    snap = snapshot(run)
    data = _other_data(tmp_path, tiny_data) if change == "other-data" else tiny_data
    extra = [] if change == "other-data" else change
    res = cli(*_run_args(tiny_model_dir, data, run, *extra), "--resume")
    refused(res, "--resume refused", needle, "start a new --out")
    assert_intact(snap)  # config.toml included: a refused resume rewrites nothing


def test_resume_on_a_missing_run_is_an_error(cli, tmp_path, tiny_model_dir, tiny_data):
    refused(cli(*_run_args(tiny_model_dir, tiny_data, tmp_path / "nope"), "--resume"), "does not exist", "drop --resume")
    assert not (tmp_path / "nope").exists()


def test_resume_may_add_steps(cli, tmp_path, killed_run, tiny_model_dir, tiny_data):
    run = tmp_path / "run"
    shutil.copytree(killed_run, run)
    res = cli(*_run_args(tiny_model_dir, tiny_data, run, "--max-steps", "4", "--set", "train.log_every=2"), "--resume")
    assert res.code == 0, res.err
    assert json.loads((run / "summary.json").read_text())["phases"]["srl"]["updates"] == 4
    assert json.loads((run / "manifest.json").read_text())["stage"] == "train"


def test_columns_come_from_the_whole_source(cli, tmp_path):
    rows = [plain_row(i) for i in range(11)]
    no_answer = rows_file(tmp_path / "a.jsonl", [{k: v for k, v in rows[0].items() if k != "answer"}, *rows[1:]])
    for args in ((), ("--answer-col", "answer")):
        res = cli("decompose", no_answer, "--out", tmp_path / f"a{len(args)}", "--val-size", "0", *args)
        assert res.code == 0, res.err
        m = json.loads((tmp_path / f"a{len(args)}" / "manifest.json").read_text())
        assert m["files"]["rlvr/train-00000-of-00001.parquet"]["rows"] == 10 and m["columns"]["answer"] == "answer"
    for col in ("solution", "id"):
        src = rows_file(tmp_path / f"{col}.jsonl", [{k: v for k, v in rows[0].items() if k != col}, *rows[1:]])
        res = cli("decompose", src, "--out", tmp_path / col, "--val-size", "0")
        assert res.code == 0, res.err
        m = json.loads((tmp_path / col / "manifest.json").read_text())
        assert m["counts"]["accepted"] == 10 and m["stats"]["reject_reasons"] == {f"missing_field:{col}": 1}


def test_a_batch_with_no_trainable_token_is_not_an_update(cli, tmp_path, tiny_model_dir, tiny_data):
    fx.install()
    out = tmp_path / "run"
    res = cli(*fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl", "--set", "train.rollout.truncation='mask'",
                            "--set", "train.phases.srl.max_new_tokens=2", "--set", "train.phases.srl.expert_in_group=false",
                            "--set", "train.phases.srl.sampling.patience=2"))
    assert res.code == 2 and "Traceback" not in res.err
    assert res.err.strip().splitlines()[-1].startswith("error: srl: 2 draws in a row with no trainable token")
    assert json.loads((out / "summary.json").read_text())["phases"]["srl"]["updates"] == 0


def test_eval_needs_an_answer_column_and_reports_dropped_rows(cli, tmp_path, tiny_model_dir):
    bench = rows_file(tmp_path / "b.jsonl", [{"problem": "1+1?", "solution": "It is 2, so \\boxed{2}."}])
    refused(cli("eval", tiny_model_dir, "--bench", bench), "no answer column", "--answer-col")
    rows = [{"problem": "1+1?", "answer": "2"}, {"problem": None, "answer": "3"}, {"problem": "2+2?", "answer": None},
            {"problem": "3+3?"}]
    bench = rows_file(tmp_path / "c.jsonl", rows)
    out = tmp_path / "res.json"
    res = cli("eval", tiny_model_dir, "--bench", bench, "--k", "0", "--max-new-tokens", "2", "--bootstrap", "5",
              "--out", out)
    assert res.code == 0, res.err
    assert "bench c: 3 rows left out (no answer in answer: 2, no problem: 1); 1 scored" in res.err
    summary = json.loads(out.read_text())
    assert summary["benches"]["c"]["dropped"] == {"no answer in answer": 2, "no problem": 1}
    assert summary["results"][tiny_model_dir.name]["c"]["n"] == 1


def test_run_reruns_a_stage_whose_files_changed(cli, tmp_path, monkeypatch):
    import polars as pl

    import srlkit.pipeline as P

    for name in ("embed", "train", "eval", "report"):
        monkeypatch.setattr(P, f"stage_{name}", lambda *a: None)
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'name = "t"\n[decompose]\nsource = "{NUMBERED}"\n[embed]\nenabled = false\n')
    root = tmp_path / "root"
    assert cli("run", recipe, "--out", root).code == 0
    shard = root / "data" / "srl" / "train-00000-of-00001.parquet"
    good = shard.read_bytes()
    pl.read_parquet(shard).head(3).write_parquet(shard)  # cut to 3 rows
    res = cli("run", recipe, "--out", root)
    assert res.code == 0, res.err
    assert "[decompose] running: its outputs changed since it ran: srl/train-00000-of-00001.parquet changed" in res.err
    assert shard.read_bytes() == good


def test_run_refuses_a_root_holding_other_files_before_any_stage(cli, tmp_path, monkeypatch):
    import srlkit.pipeline as P

    calls = []
    for name in P.STAGES:
        monkeypatch.setattr(P, f"stage_{name}", lambda *a, _n=name: calls.append(_n))
    root = tmp_path / "root"
    (root / "report").mkdir(parents=True)
    (root / "report" / "notes.md").write_text("mine\n")
    snap = snapshot(root)
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "t"\n[embed]\nenabled = false\n')
    refused(cli("run", recipe, "--out", root), "root/report", "notes.md")
    assert calls == [] and not (root / "data").exists()
    assert_intact(snap)


def test_push_uploads_exactly_the_manifests_files(cli, tmp_path):
    out = _decomposed(cli, tmp_path / "ds")
    (out / "notes.md").write_text("private\n")
    (out / "raw.jsonl").write_text("{}\n")
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "optimizer.pt").write_bytes(b"x")
    res = cli("push", out, "--repo", "me/ds", "--dry-run")
    assert res.code == 0, res.err
    listed = sorted(line.strip() for line in res.out.splitlines()[1:])
    m = json.loads((out / "manifest.json").read_text())
    assert listed == sorted({*m["files"], "manifest.json", "README.md", "steps_hist.png"})
    rej = out / "rejects.parquet"
    good = rej.read_bytes()
    rej.write_bytes(good[:-10])
    refused(cli("push", out, "--repo", "me/ds", "--dry-run"), "rejects.parquet changed")
    rej.write_bytes(good)
    (out / "srl" / "train-00000-of-00001.parquet").unlink()
    refused(cli("push", out, "--repo", "me/ds", "--dry-run"), "missing")


# --------------------------------------------------------------------------- tracebacks: one line instead


def test_decompose_bad_out_paths(cli, tmp_path, monkeypatch):
    f = tmp_path / "file.txt"
    f.write_text("keep\n")
    snap = snapshot(tmp_path)
    refused(cli("decompose", NUMBERED, "--out", f), "is a file")
    refused(cli("decompose", NUMBERED, "--out", f / "sub"), "is a file")
    ro = tmp_path / "ro"
    real = Path.mkdir

    def mkdir(self, *a, **k):  # as root a read-only folder is still writable: simulate the refusal
        if ro in self.parents or self == ro:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    refused(cli("decompose", NUMBERED, "--out", ro / "out"), "Permission denied")
    assert_intact(snap)


@pytest.mark.parametrize("text,needle", [('srl_user = "Problem {problem} {foo}"\n', "{foo}"),
                                         ('srl_user = "Problem {problem"\n', "not a valid template"),
                                         ('rlvr_user = "{problem} {context}"\n', "{context}")])
def test_decompose_bad_template(cli, tmp_path, text, needle):
    t = tmp_path / "t.toml"
    t.write_text(text)
    refused(cli("decompose", NUMBERED, "--template", t, "--out", tmp_path / "o"), needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("field", ["problem", "solution", "answer", "id"])
def test_a_lone_surrogate_is_a_row_reject(cli, tmp_path, field):
    lines = [json.dumps(plain_row(i)) for i in range(4)]
    lines[1] = lines[1].replace(f'"{field}": "', f'"{field}": "\\ud800', 1)
    src = tmp_path / "s.jsonl"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o"
    res = cli("decompose", src, "--out", out, "--val-size", "0")
    assert res.code == 0, res.err
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"] == {**m["counts"], "input": 4, "accepted": 3, "rejected": 1}
    assert m["stats"]["reject_reasons"] == {"invalid_unicode": 1} and not (out / "_work").exists()


def test_train_config_not_text(cli, tmp_path):
    cfg = tmp_path / "r.toml"
    cfg.write_bytes(b"\x00\xff\xfe binary")
    refused(cli("train", "--config", cfg, "--dry-run"), "not UTF-8", "r.toml")
    refused(cli("run", cfg, "--dry-run"), "not UTF-8")


@pytest.mark.parametrize("target", ["trainable.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt", "legacy"])
def test_resume_with_a_damaged_checkpoint(cli, tmp_path, killed_run, tiny_model_dir, tiny_data, target):
    """Damaged in every checkpoint: one line naming the file, nothing written. (Damaged only in
    the newest: `test_resume_takes_the_newest_checkpoint_that_verifies`.)"""
    run = tmp_path / "run"
    shutil.copytree(killed_run, run)
    legacy = target == "legacy"  # written before checksums: it must still load
    target = "optimizer.pt" if legacy else target
    for d in (run / "checkpoints").iterdir():
        if legacy:
            (d / "checksums.json").unlink()
        f = d / target
        f.write_bytes(b"garbage" if target == "rng.pt" else f.read_bytes()[: f.stat().st_size // 2])
    snap = snapshot(run)
    res = cli(*_run_args(tiny_model_dir, tiny_data, run), "--resume")
    assert "Traceback" not in res.err and res.code == 2, res.err
    lines = res.err.strip().splitlines()
    assert lines[-1].startswith("error: --resume: no checkpoint") and target in lines[-1]
    assert [ln for ln in lines[:-1] if "skipped" in ln] == lines[:-1] and len(lines) == 3  # one warning per checkpoint
    assert ("does not load" if legacy else "sha256 differs") in res.err
    assert_intact(snap)


def test_resume_takes_the_newest_checkpoint_that_verifies(cli, tmp_path, killed_run, tiny_model_dir, tiny_data):
    run = tmp_path / "run"
    shutil.copytree(killed_run, run)
    f = run / "checkpoints" / "srl-000002" / "trainable.safetensors"
    f.write_bytes(f.read_bytes()[:100])  # truncated
    res = cli(*_run_args(tiny_model_dir, tiny_data, run), "--resume")
    assert res.code == 0, res.err
    assert "checkpoint srl-000002 skipped: trainable.safetensors is damaged" in res.err
    assert "resuming from srl-000001" in res.err and "Traceback" not in res.err
    assert json.loads((run / "state.json").read_text())["finished"] is True


def test_resume_with_a_broken_state_in_any_checkpoint(cli, tmp_path, killed_run, tiny_model_dir, tiny_data):
    """Even an older checkpoint's broken trainer_state.json is named and skipped, never a crash."""
    run = tmp_path / "run"
    shutil.copytree(killed_run, run)
    (run / "checkpoints" / "srl-000001" / "trainer_state.json").write_text("{not json")
    (run / "checkpoints" / "srl-000002" / "rng.pt").write_bytes(b"x")
    snap = snapshot(run)
    res = cli(*_run_args(tiny_model_dir, tiny_data, run), "--resume")
    assert res.code == 2 and "Traceback" not in res.err
    assert "checkpoint srl-000001 skipped: trainer_state.json is missing or damaged" in res.err
    assert res.err.strip().splitlines()[-1].startswith("error: --resume: no checkpoint")
    assert_intact(snap)


def test_eval_bad_out(cli, tmp_path, tiny_model_dir):
    bench = rows_file(tmp_path / "b.jsonl", [{"problem": "1+1?", "answer": "2"}])
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "x.txt").write_text("keep\n")
    f = tmp_path / "file.txt"
    f.write_text("keep\n")
    snap = snapshot(tmp_path)
    args = ("eval", tiny_model_dir, "--bench", bench, "--k", "0", "--max-new-tokens", "2")
    refused(cli(*args, "--out", folder), "is a folder")
    refused(cli(*args, "--out", f / "r.json"), "is a file")
    refused(cli(*args, "--out", f), "not an `srlkit eval` results file")
    refused(cli(*args, "--out", bench), "is the input")
    assert_intact(snap)


def test_report_bad_inputs(cli, tmp_path, killed_run):
    run = tmp_path / "run"
    shutil.copytree(killed_run, run)
    (run / "metrics.jsonl").write_bytes(b"\x00\xff\xfe\x80 binary")
    refused(cli("report", run), "metrics.jsonl", "not UTF-8")
    shutil.copy(killed_run / "metrics.jsonl", run / "metrics.jsonl")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join([lines[0], "[1, 2]", "3", *lines[1:]]) + "\n")
    res = cli("report", run)
    assert res.code == 0, res.err
    assert "2 lines skipped (not JSON objects)" in res.err
    shutil.copy(killed_run / "metrics.jsonl", run / "metrics.jsonl")
    not_eval = tmp_path / "n.json"
    not_eval.write_text('{"a": 1}')
    refused(cli("report", run, "--eval", not_eval), "not an `srlkit eval` results file")
    f = tmp_path / "file.txt"
    f.write_text("keep\n")
    snap = snapshot(tmp_path)
    refused(cli("report", run, "--out", f / "r"), "is a file")
    refused(cli("report", run, "--out", run), "overlap")
    assert_intact(snap)


@pytest.mark.parametrize("args,needle", [
    (["--set", "train.phases.srl.lr=inf"], "finite"),
    (["--set", "train.phases.srl.lr=nan"], "finite"),
    (["--world-size", "0"], "--world-size"),
    (["--gpu-gib", "-5"], "--gpu-gib"),
    (["--set", "name='../../escape'"], "plain name"),
    (["--set", "name=''"], "plain name"),
])
def test_dry_run_range_checks(cli, args, needle):
    refused(cli("train", "--dry-run", *args), needle)


def test_run_recipe_name_is_a_plain_name(cli, tmp_path):
    r = tmp_path / "r.toml"
    r.write_text('name = "../../escape"\n')
    refused(cli("run", r, "--dry-run"), "plain name")


# --------------------------------------------------------------------------- fixtures


def _run_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    """A tiny srl run, as cheap as a run gets: a checkpoint every step, no validation."""
    fx.install()
    sets = ["train.phases.srl.save_every=1", "train.phases.srl.val_prompts=0", "train.phases.srl.eval_every=0",
            "train.phases.srl.max_new_tokens=4", "train.val_solve=0", "train.sample_every=0"]
    return fx.tiny_args(model, data, out, "--curriculum", "srl", *[a for s in sets for a in ("--set", s)], *extra)


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory, tiny_model_dir, tiny_data):
    """A tiny srl run stopped right after its step-2 checkpoint (srl-000001 and srl-000002 on disk)."""
    from srlkit.cli import main
    from srlkit.train import curriculum

    class Stop(BaseException):
        pass

    def hook(phase, step, *, phase_end=False):
        if step == 2 and not phase_end:
            raise Stop

    out = tmp_path_factory.mktemp("killed") / "run"
    mp = pytest.MonkeyPatch()
    mp.setattr(curriculum, "kill_hook", hook)
    try:
        with pytest.raises(Stop):
            main(_run_args(tiny_model_dir, tiny_data, out))
    finally:
        mp.undo()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["srl-000001", "srl-000002"]
    return out


@pytest.mark.parametrize("resume", [False, True])
def test_train_refuses_its_out_before_building_the_recipes_data(cli, tmp_path, monkeypatch, resume):
    """A foreign --out (or --resume of nothing) is refused at once, not after the recipe's data is built."""
    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "t"\n[decompose]\nsource = "gym:chain_sum?train=20&validation=4"\n')
    out = tmp_path / ("mine" if not resume else "none")
    if not resume:
        out.mkdir()
        (out / "notes.md").write_text("mine\n")
    snap = snapshot(tmp_path)
    res = cli("train", "--config", recipe, "--out", out, *(["--resume"] if resume else []))
    refused(res, *(["not empty", "notes.md"] if not resume else ["does not exist", "drop --resume"]))
    assert not (tmp_path / "runs").exists()  # the recipe's dataset was not built
    assert_intact(snap)


@pytest.mark.parametrize("resume", [False, True], ids=["foreign-out", "resume-nothing"])
def test_dry_run_refuses_the_out_the_real_run_would_refuse(cli, tmp_path, resume):
    """`--dry-run` says what the run would do, so it must not print a plan for an --out the run refuses."""
    out = tmp_path / ("mine" if not resume else "none")
    if not resume:
        out.mkdir()
        (out / "notes.md").write_text("mine\n")
    snap = snapshot(tmp_path)
    res = cli("train", "--out", out, "--dry-run", *(["--resume"] if resume else []))
    refused(res, *(["not empty", "notes.md"] if not resume else ["does not exist", "drop --resume"]))
    assert "[model]" not in res.out  # no plan printed
    assert_intact(snap)
    refused(cli("train", "--resume", "--dry-run"), "--resume needs --out")


def test_a_run_that_failed_at_start_up_may_start_over(cli, tmp_path, tiny_model_dir, tiny_data):
    """A wrong --model fails before the first step and leaves only config.toml and manifest.json. The
    corrected command starts over there (with a warning) instead of asking for a --resume that the
    changed --model would then refuse; a run that trained is still never started over."""
    fx.install()
    out = tmp_path / "run"
    res = cli(*fx.tiny_args("no-such-model", tiny_data, out, "--curriculum", "srl"))
    assert res.code == 2 and "Traceback" not in res.err and "no-such-model" in res.err
    assert sorted(os.listdir(out)) == ["config.toml", "manifest.json"]  # the case this test is about
    res = cli(*fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl"))
    assert res.code == 0, res.err
    assert "stopped before it trained anything" in res.err and "starting over" in res.err
    assert json.loads((out / "summary.json").read_text())["phases"]["srl"]["updates"] == 3
    refused(cli(*fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl")), "pass --resume")


def test_resume_of_a_finished_run_says_there_is_nothing_left(cli, tmp_path, tiny_model_dir, tiny_data):
    """`--resume` on a run whose phases are all done used to print only the run folder, as if it trained."""
    fx.install()
    out = tmp_path / "run"
    args = fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl")
    assert cli(*args).code == 0
    before = json.loads((out / "summary.json").read_text())["phases"]["srl"]["updates"]
    res = cli(*args, "--resume")
    assert res.code == 0 and "Traceback" not in res.err, res.err
    assert "is finished, so there is nothing left to train" in res.err
    assert json.loads((out / "summary.json").read_text())["phases"]["srl"]["updates"] == before == 3
    assert f"--model {out}/final" in res.err  # and says how to train further


def test_resume_takes_the_runs_own_settings(cli, tmp_path, killed_run):
    """`srlkit train --out RUN --resume` (the README's resume line) continues a run started with
    --model, --data and --set as it was started; it used to compare the run with the default recipe
    and refuse. A flag or --set on top is still a change the run folder judges."""
    fx.install()
    run = tmp_path / "run"
    shutil.copytree(killed_run, run)
    snap = snapshot(run)
    refused(cli("train", "--out", run, "--resume", "--set", "train.phases.srl.lr=0.02"),
            "--resume refused", "phases.srl.lr: 0.01 -> 0.02")
    assert_intact(snap)
    res = cli("train", "--out", run, "--resume", "--max-steps", "4")
    assert res.code == 0 and "Traceback" not in res.err, res.err
    assert json.loads((run / "summary.json").read_text())["phases"]["srl"]["updates"] == 4
    (run / "config.toml").write_bytes(b"\x00 not toml")
    refused(cli("train", "--out", run, "--resume"), "config.toml does not load", "--config")


def test_a_model_folder_without_a_tokenizer_is_one_line(cli, tmp_path, tiny_model_dir, tiny_data):
    """config.json and weights but no tokenizer files: transformers raises ValueError, which train
    reported as an internal error."""
    fx.install()
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, model / name)
    snap = snapshot(model)
    refused(cli(*fx.tiny_args(model, tiny_data, tmp_path / "run", "--curriculum", "srl")),
            f"cannot load model '{model}'", "check the model folder")
    assert_intact(snap)


def test_push_report_and_template_name_what_the_folder_is(cli, tmp_path, killed_run):
    snap = snapshot(killed_run)
    refused(cli("push", killed_run, "--repo", "me/x", "--dry-run"), "is an `srlkit train` output", "srlkit decompose")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    (empty / "metrics.jsonl").write_text("")
    refused(cli("report", empty), "an empty metrics.jsonl")
    refused(cli("decompose", NUMBERED, "--template", tmp_path, "--out", tmp_path / "o"), "is a folder")
    assert_intact(snap)


@pytest.mark.parametrize("source,flags,what", [
    (str(NUMBERED), ["--subset", "main"], "a local file"),
    (str(NUMBERED), ["--split", "test", "--revision", "v1"], "a local file"),
    ("gym:chain_sum?train=5", ["--split", "test"], "a generated gym task"),
])
def test_hub_only_options_on_local_data_are_refused(cli, tmp_path, source, flags, what):
    """--subset, --split and --revision were silently ignored for a local file: the user thinks they
    picked a split and gets every row."""
    refused(cli("decompose", source, *flags, "--out", tmp_path / "o"), flags[0], what, "drop")
    assert not (tmp_path / "o").exists()


def test_eval_samples_at_temperature_zero_are_refused(cli, tmp_path, tiny_model_dir):
    """k samples at temperature 0 are k copies of the greedy answer: avg@k and pass@k were printed as
    if they measured something."""
    refused(cli("eval", tiny_model_dir, "--bench", "gym:chain_sum?test=2", "--k", "4", "--temperature", "0",
                "--out", tmp_path / "e"), "k = 4 samples at temperature 0", "k = 0")
    assert not list(tmp_path.iterdir())
