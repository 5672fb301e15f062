"""`srlkit train`: run the SRL / RLVR / SFT curriculum on a decomposed dataset.

torch and transformers are imported inside the command, so `srlkit train --help` is instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

from srlkit.cli import app

# The embedded default recipe: used when no --config is given (a source checkout ships it).
DEFAULT_RECIPE = Path(__file__).resolve().parents[2] / "pipelines" / "tiny-cpu.toml"


def resolve_config(
    config: Path | None, sets: list[str], *, curriculum: str | None = None, model: str | None = None,
    data: str | None = None, out: str | None = None, seed: int | None = None, engine: str | None = None,
    lora: bool | None = None, max_steps: int | None = None, resume: bool = False,
):
    """Recipe file (or the embedded default) -> `--set` overrides -> explicit flags -> TrainConfig."""
    from srlkit.config import Recipe, apply_overrides, build, read_toml
    from srlkit.errors import ConfigError

    path = config if config is not None else (DEFAULT_RECIPE if DEFAULT_RECIPE.is_file() else None)
    data_ = read_toml(path) if path else {}
    flags: list[str] = []
    if curriculum is not None:
        flags.append(f"train.curriculum={curriculum!r}")
    for key, val in (("model.name_or_path", model), ("data", data), ("out", out), ("rollout.engine", engine)):
        if val is not None:
            flags.append(f"train.{key}={str(val)!r}")
    if seed is not None:
        flags.append(f"train.seed={seed}")
    if lora is not None:
        flags.append(f"train.model.lora.enabled={'true' if lora else 'false'}")
    if resume:
        flags.append("train.resume=true")
    data_ = apply_overrides(data_, list(sets) + flags)
    # The whole recipe is validated, so a typo in any `--set` key is an error, not ignored.
    cfg = build(Recipe, data_, where=f"recipe {path}" if path else "config").train
    if max_steps is not None:
        if max_steps < 1:
            raise ConfigError("--max-steps must be >= 1")
        for name in set(cfg.curriculum):
            cfg.phases[name].steps = max_steps
    return cfg


@app.command("train")
def cmd(
    config: Path = typer.Option(None, "--config", "-c", help="Recipe TOML (its \\[train] table). Default: pipelines/tiny-cpu.toml."),
    curriculum: str = typer.Option(None, "--curriculum", help="Phases in order, e.g. srl,rlvr (any of srl, rlvr, sft)."),
    model: str = typer.Option(None, "--model", help="HF model id or folder. Default: the bundled SmolLM2-135M-Instruct."),
    data: str = typer.Option(None, "--data", help="A `srlkit decompose` folder. Default: the bundled CHAMP data."),
    out: str = typer.Option(None, "--out", help="Run folder. Default: runs/<UTC timestamp>."),
    seed: int = typer.Option(None, "--seed", help="Seed for data order, sampling and initialisation."),
    engine: str = typer.Option(None, "--engine", help="Rollout engine: hf or vllm."),
    lora: bool = typer.Option(None, "--lora/--no-lora", help="LoRA adapter or full fine-tuning."),
    max_steps: int = typer.Option(None, "--max-steps", help="Steps per phase, for every phase."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its newest checkpoint."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config as TOML and exit."),
    sets: list[str] = typer.Option([], "--set", help="Override any recipe field: KEY=VALUE, e.g. train.phases.srl.lr=1e-6."),
) -> None:
    """Train with the SRL / RLVR / SFT curriculum (GRPO learner, exact resume)."""
    from srlkit.cli._common import out as stdout
    from srlkit.cli._common import progress
    from srlkit.config import to_toml

    cfg = resolve_config(config, sets, curriculum=curriculum, model=model, data=data, out=out, seed=seed,
                         engine=engine, lora=lora, max_steps=max_steps, resume=resume)
    if dry_run:
        stdout.print(to_toml(cfg), end="", markup=False, highlight=False, soft_wrap=True)
        return
    if resume and not cfg.out:
        from srlkit.errors import ConfigError

        raise ConfigError("--resume needs --out RUN (the run folder to continue)")
    from srlkit.train.run import default_out, train

    if not cfg.out:
        cfg.out = str(default_out())
    with progress() as bar:
        run = train(cfg, progress=bar)
    stdout.print(str(run), markup=False, highlight=False)
