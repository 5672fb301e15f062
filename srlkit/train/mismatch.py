"""Engine/trainer mismatch correction: importance weights pi_old / pi_behav, per token or per sequence.

The rollout engine samples with its own numerics (vLLM kernels, bf16, merged LoRA), so its
log-probs (pi_behav) differ from the trainer's (pi_old) for the same weights. The gradient is
an expectation under pi_old, the samples come from pi_behav: the importance ratio pi_old /
pi_behav corrects that, and a cap C bounds its variance. `loss.tis_mode` picks how:

- `token_truncate` (the default): each token weighted by min(rho_t, C).
- `token_mask`: a token whose rho_t leaves [1/C, C] gets weight 0, the others 1.
- `sequence_truncate`: every token of a sequence weighted by min(rho, C), rho = prod_t rho_t
  (the ratio of the whole sequence's probabilities).
- `sequence_mask`: a sequence whose rho leaves [1/C, C] is dropped (weight 0), the others kept
  with weight 1.

Weights carry no gradient. Sequence ratios use only the row's unmasked tokens.
"""

from __future__ import annotations

import torch

MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


def importance_weights(old_logp: torch.Tensor, behav_logp: torch.Tensor, cap: float) -> torch.Tensor:
    """Truncated importance weights min(exp(old - behav), cap) per token (no gradient).

    >>> importance_weights(torch.tensor([0.0, 0.0]), torch.tensor([0.0, -2.0]), 2.0).tolist()
    [1.0, 2.0]
    """
    return torch.exp(old_logp - behav_logp).clamp(max=cap).detach()


def mismatch_weights(old_logp: torch.Tensor, behav_logp: torch.Tensor, mask: torch.Tensor, cap: float,
                     mode: str = "token_truncate") -> tuple[torch.Tensor, torch.Tensor]:
    """Weights [N, L] (or [N, 1] per sequence) and a 0/1 tensor of what the cap changed.

    >>> w, hit = mismatch_weights(torch.zeros(2, 2), torch.tensor([[0.0, -1.0], [0.0, 0.0]]), torch.ones(2, 2),
    ...                           2.0, "sequence_mask")
    >>> w.flatten().tolist(), hit.flatten().tolist()   # rho = e > 2: the first row is dropped
    ([0.0, 1.0], [1.0, 0.0])
    """
    if mode == "token_truncate":
        w = importance_weights(old_logp, behav_logp, cap)
        return w, (w >= cap).float()
    if mode not in MODES:
        raise ValueError(f"unknown tis_mode '{mode}'; use one of {', '.join(MODES)}")
    log_rho = (old_logp - behav_logp).detach()
    if mode.startswith("sequence"):
        log_rho = (log_rho * mask).sum(-1, keepdim=True)
    rho = torch.exp(log_rho)
    if mode.endswith("truncate"):
        w = rho.clamp(max=cap)
        return w, (rho >= cap).float()
    keep = (rho >= 1.0 / cap) & (rho <= cap)
    return keep.float(), (~keep).float()
