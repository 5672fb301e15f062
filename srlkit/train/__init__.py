"""The phase-blind GRPO learner, its losses and advantages, the curriculum, checkpoints and metrics.

Entry point: `srlkit.train.run.train(cfg: TrainConfig) -> Path` (the run folder).
"""
