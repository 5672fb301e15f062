"""Dynamic sampling: the std > eps group filter and the sample-until-full loop (`dynamic`)."""

from srlkit.sampling.dynamic import (
    Group,
    SamplingReport,
    informative_mask,
    is_informative,
    population_std,
    sample_until_full,
)

__all__ = ["Group", "SamplingReport", "informative_mask", "is_informative", "population_std", "sample_until_full"]
