"""Rewards: batch callables in a registry (see `srlkit.rewards.base`).

Importing this package registers the built-in rewards: `step_similarity`, `step_exact`,
`embedding`, `mixed`, `math` and `agent_action`. Heavy libraries load on first use, not here.
"""

from srlkit.rewards.base import REGISTRY, Reward, ScoreResult, make_reward, register
from srlkit.rewards import similarity as _similarity  # noqa: E402,F401  (registers)
from srlkit.rewards import embedding as _embedding  # noqa: E402,F401
from srlkit.rewards import math_answer as _math  # noqa: E402,F401
from srlkit.rewards import agent as _agent  # noqa: E402,F401
from srlkit.rewards import scorer as _scorer  # noqa: E402,F401  (registers "mixed")

__all__ = ["REGISTRY", "Reward", "ScoreResult", "make_reward", "register"]
