"""Rewards: pure functions in a registry (see `srlkit.rewards.base`)."""

from srlkit.rewards.base import REGISTRY, ScoreResult, make_reward, register

__all__ = ["REGISTRY", "ScoreResult", "make_reward", "register"]
