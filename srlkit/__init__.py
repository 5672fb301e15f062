"""srlkit: Supervised Reinforcement Learning (SRL) then RLVR, as one curriculum."""

__version__ = "0.1.0"
