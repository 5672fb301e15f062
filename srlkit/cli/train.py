"""`srlkit train`: run the SRL / RLVR / SFT curriculum on a decomposed dataset.

torch and transformers are imported inside the command, so `srlkit train --help` is instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

from srlkit.cli import app

from srlkit.cli._common import DEFAULT_RECIPE


def resolve_config(
    config: Path | None, sets: list[str], *, curriculum: str | None = None, model: str | None = None,
    data: str | None = None, out: str | None = None, seed: int | None = None, engine: str | None = None,
    lora: bool | None = None, max_steps: int | None = None, resume: bool = False,
):
    """Recipe file (or the embedded default) -> `--set` overrides -> explicit flags -> TrainConfig.

    `--resume` without `--config` starts from the run's own settings (`RUN/config.toml`), so
    `srlkit train --out RUN --resume` continues any run as it was started; flags and `--set`
    then change it, and the run folder refuses every change but the resumable ones.
    """
    from srlkit.config import Recipe, apply_overrides, build, read_toml
    from srlkit.errors import ConfigError

    path = config if config is not None else (DEFAULT_RECIPE if DEFAULT_RECIPE.is_file() else None)
    own = Path(out) / "config.toml" if resume and config is None and out else None
    if own is not None and own.is_file():
        try:
            data_, path = {"train": read_toml(own)}, own
        except ConfigError:
            raise ConfigError(f"--resume: {own} does not load, so this run's settings are unknown; restore it, "
                              "or pass the run's settings again with --config") from None
    else:
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


def recipe_data(config: Path | None, sets: list[str], *, build: bool) -> str | None:
    """The dataset of a recipe whose `[decompose]` is not the bundled default: `srlkit run`'s
    ROOT/data, decomposed first (by the main process only) when `build` and it is missing."""
    if config is None:
        return None
    from srlkit.config import DecomposeConfig, load_recipe
    from srlkit.pipeline import Paths, pipeline_root, prepare_data

    recipe = load_recipe(config, [s for s in sets if s.startswith(("decompose.", "embed.", "name", "out"))])
    if recipe.decompose == DecomposeConfig():
        return None  # the bundled CHAMP data (`bundled_data`)
    if not build:
        return str(Paths(pipeline_root(recipe)).data)
    from srlkit.train.dist import launch_main_first

    with launch_main_first():
        return str(prepare_data(recipe))


# Shapes of models a dry run may name without having them on disk (config.json values).
KNOWN_SHAPES = {
    None: dict(hidden_size=576, num_hidden_layers=30, intermediate_size=1536, vocab_size=49152,
               num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True, model_type="llama"),
    "Qwen/Qwen2.5-7B-Instruct": dict(hidden_size=3584, num_hidden_layers=28, intermediate_size=18944,
                                     vocab_size=152064, num_attention_heads=28, num_key_value_heads=4,
                                     tie_word_embeddings=False, model_type="qwen2"),
}


def _launch_backend() -> str:
    import os

    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return "fsdp"
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return f"zero{os.environ.get('ACCELERATE_DEEPSPEED_ZERO_STAGE', '2')}"
    return "ddp"


def memory_lines(cfg, world_size: int | None, backend: str | None, gpu_gib: float | None) -> list[str]:
    """The per-GPU memory estimate of `cfg` as text lines (see srlkit.train.memory)."""
    import math
    import os

    from srlkit.errors import ConfigError
    from srlkit.fileio import read_json
    from srlkit.train.memory import GiB, Shape, estimate_for

    if world_size is not None and world_size < 1:
        raise ConfigError(f"--world-size {world_size}: give the number of processes, 1 or more")
    if gpu_gib is not None and not (math.isfinite(gpu_gib) and gpu_gib > 0):
        raise ConfigError(f"--gpu-gib {gpu_gib}: give the GPU's memory in GiB, a positive number")
    name = cfg.model.name_or_path
    config = Path(name) / "config.json" if name else None
    if config is not None and config.is_file():
        shape = Shape.from_config(read_json(config, fix="give a model folder with a valid config.json"))
    elif name in KNOWN_SHAPES:
        shape = Shape.from_config(KNOWN_SHAPES[name])
    else:
        return [f"memory: no estimate (the config of '{name}' is not on disk; pass a local model folder)"]
    world = world_size or int(os.environ.get("WORLD_SIZE", "1"))
    backend = backend or _launch_backend()
    if backend not in ("ddp", "fsdp", "zero2", "zero3"):
        raise ConfigError(f"--backend {backend}: use ddp, fsdp, zero2 or zero3")
    card = gpu_gib * GiB if gpu_gib else None
    if card is None:
        try:
            import torch

            if torch.cuda.is_available():
                card = float(torch.cuda.get_device_properties(0).total_memory)
        except Exception:
            pass
    est = estimate_for(cfg, shape, world_size=world, backend=backend, card_bytes=card)
    head = f"memory per GPU ({world} process(es), {backend}, {shape.params() / 1e9:.2f}B parameters):"
    return [head, *est.lines(card)]


@app.command("train")
def cmd(
    config: Path = typer.Option(None, "--config", "-c", help="Recipe TOML (its \\[train] table). Default: pipelines/tiny-cpu.toml."),
    curriculum: str = typer.Option(None, "--curriculum", help="Phases in order, e.g. srl,rlvr: srl, rlvr, sft, or any name with a \\[train.phases.NAME] table."),
    model: str = typer.Option(None, "--model", help="HF model id or folder. Default: the bundled SmolLM2-135M-Instruct."),
    data: str = typer.Option(None, "--data", help="A `srlkit decompose` folder. Default: the recipe's dataset (built first into "
                                                   "runs/<recipe name>/data; for the default recipe, chain sums)."),
    out: str = typer.Option(None, "--out", help="Run folder. Default: runs/<UTC timestamp>."),
    seed: int = typer.Option(None, "--seed", help="Seed for data order, sampling and initialisation."),
    engine: str = typer.Option(None, "--engine", help="Rollout engine: hf or vllm."),
    lora: bool = typer.Option(None, "--lora/--no-lora", help="LoRA adapter or full fine-tuning."),
    max_steps: int = typer.Option(None, "--max-steps", help="Steps per phase, for every phase."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its newest checkpoint."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config as TOML, with a per-GPU memory estimate, and exit."),
    world_size: int = typer.Option(None, "--world-size", help="--dry-run: processes to estimate for (default: $WORLD_SIZE or 1)."),
    backend: str = typer.Option(None, "--backend", help="--dry-run: ddp, fsdp, zero2 or zero3 (default: from the accelerate launch)."),
    gpu_gib: float = typer.Option(None, "--gpu-gib", help="--dry-run: GPU memory in GiB to check against (default: this machine's GPU)."),
    sets: list[str] = typer.Option([], "--set", help="Override any recipe field: KEY=VALUE, e.g. train.phases.srl.lr=1e-6."),
) -> None:
    """Train with the SRL / RLVR / SFT curriculum (GRPO learner, exact resume)."""
    from srlkit.cli._common import out as stdout
    from srlkit.cli._common import progress
    from srlkit.config import to_toml

    cfg = resolve_config(config, sets, curriculum=curriculum, model=model, data=data, out=out, seed=seed,
                         engine=engine, lora=lora, max_steps=max_steps, resume=resume)
    recipe = config if config is not None else (DEFAULT_RECIPE if DEFAULT_RECIPE.is_file() else None)
    recipe_dir = recipe_data(recipe, sets, build=False) if cfg.data is None else None
    if resume and not cfg.out:
        from srlkit.errors import ConfigError

        raise ConfigError("--resume needs --out RUN (the run folder to continue)")
    if cfg.out:  # refuse a foreign or wrong --out before minutes of building data (and in a dry run)
        from srlkit.train.runfolder import precheck

        precheck(cfg, Path(cfg.out), reads=[Path(cfg.data)] if cfg.data else [])
    if dry_run:
        lines = memory_lines(cfg, world_size, backend, gpu_gib)  # checks its flags before anything is printed
        stdout.print(to_toml(cfg), end="", markup=False, highlight=False, soft_wrap=True)
        if recipe_dir:
            stdout.print(f"# data: {recipe_dir} (the recipe's [decompose] output, built first when missing)",
                         markup=False, highlight=False, soft_wrap=True)
        for line in lines:  # TOML comments: the output still parses
            stdout.print(f"# {line}", markup=False, highlight=False, soft_wrap=True)
        return
    from srlkit.extras import require

    require("train", "srlkit train")
    from srlkit.train.run import default_out, train

    if recipe_dir:
        cfg.data = recipe_data(recipe, sets, build=True)
    elif cfg.data is None:  # neither --data nor a recipe dataset (no checkout recipe): the bundled CHAMP problems
        from srlkit.pipeline import bundled_data
        from srlkit.train.dist import launch_main_first

        with launch_main_first():  # one process builds it, the others wait and read it
            cfg.data = str(bundled_data(log=lambda m: stdout.print(m, markup=False, soft_wrap=True)))

    if not cfg.out:
        cfg.out = str(default_out())
    with progress() as bar:
        run = train(cfg, progress=bar)
    stdout.print(str(run), markup=False, highlight=False)
