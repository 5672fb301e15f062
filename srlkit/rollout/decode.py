"""The HF engine's decode loop: shared prefill, a preallocated KV cache, rows leave when done.

Why not `model.generate`:
- **Shared prefill.** The G samples of a group start from the same prompt, so the prompt is
  run through the model once per group and its KV cache is repeated G times, instead of G
  identical prefills (`generate` with `num_return_sequences` still prefills every row).
- **Slab KV cache.** transformers' `DynamicCache` grows by `torch.cat`, which copies the whole
  cache on every step (quadratic traffic; at 32 rows x 300 tokens it is ~0.4 GB per step on
  SmolLM2). `SlabLayer` preallocates `prompt + max_new_tokens` slots once and writes in place;
  attention reads only the filled prefix.
- **Shared prompt head.** The prompts of a batch usually open with the same tokens (the chat
  template and system prompt: 47 of the ~65 tokens of an eval prompt). That common prefix runs
  through the model once, for one row, and its KV cache is repeated for every prompt; only
  each prompt's own tail is prefilled per row (the rows' padding then sits between the two,
  masked out as left padding is).
- **Finished rows leave the batch.** `generate` keeps computing rows that already emitted
  EOS until the longest row ends; here they are dropped from the batch (and the cache) once
  an eighth of it has finished, so a batch costs what its live rows cost. A batch ends as
  soon as every row has finished.

Sampling matches `generate`'s: temperature, then top-k, then top-p, softmax, `multinomial`;
greedy is `argmax`. The recorded logprob is `log_softmax(logits / T)` of the chosen token
(T = 1 when greedy), before top-k/top-p, as the learner recomputes it.
"""

from __future__ import annotations

from typing import Any

import inspect

import torch
from transformers.cache_utils import Cache, DynamicLayer  # the layered cache API (transformers >= 4.56)


class SlabLayer(DynamicLayer):
    """A KV-cache layer with `capacity` preallocated positions, filled in place."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        b, h, _, d = key_states.shape
        self.device = key_states.device
        self._k = key_states.new_empty(b, h, self.capacity, d)
        self._v = value_states.new_empty(b, h, self.capacity, value_states.shape[-1])
        self.is_initialized = True

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n = key_states.shape[-2]
        self._k[:, :, self.length:self.length + n] = key_states
        self._v[:, :, self.length:self.length + n] = value_states
        self.length += n
        return self.keys, self.values

    @property
    def keys(self):  # noqa: D401 - the filled prefix, what attention reads
        return self._k[:, :, :self.length] if self.is_initialized else None

    @keys.setter
    def keys(self, value) -> None:  # DynamicLayer.__init__/reset assign; the slab ignores them
        pass

    @property
    def values(self):
        return self._v[:, :, :self.length] if self.is_initialized else None

    @values.setter
    def values(self, value) -> None:
        pass

    def get_seq_length(self) -> int:
        return self.length

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            self._k = self._k.repeat_interleave(repeats, dim=0)
            self._v = self._v.repeat_interleave(repeats, dim=0)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:
            self._k = self._k[indices]
            self._v = self._v[indices]


class SlabCache(Cache):
    def __init__(self, n_layers: int, capacity: int) -> None:
        super().__init__(layers=[SlabLayer(capacity) for _ in range(n_layers)])


def _warpers(temperature: float, top_k: int, top_p: float) -> list:
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    out: list[Any] = [TemperatureLogitsWarper(temperature)] if temperature != 1.0 else []
    if top_k > 0:
        out.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        out.append(TopPLogitsWarper(top_p))
    return out


def _cache_kwarg(model: Any) -> str:
    """transformers 5.x renamed `past_key_values` to `cache` (the old name warns)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _plain_attention(model: Any) -> bool:
    """Every layer caches plain keys/values (full or sliding attention), what `SlabLayer` holds."""
    cfg = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    kinds = getattr(cfg, "layer_types", None) or []
    return set(kinds) <= {"full_attention", "sliding_attention"}


def _n_layers(model: Any) -> int:
    cfg = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    return int(cfg.num_hidden_layers)


# A separate forward for the common head pays off when it saves enough prefill: 64 eval prompts
# sharing 47 tokens (2,961 tokens saved) decode 1.36x faster; 4 training prompts sharing ~45 of
# ~220 tokens (~135 saved) were no faster (benchmarks/rollout_hf.py, +prefix vs +prefill).
MIN_SAVED_TOKENS = 512


def common_prefix(prompts: list[list[int]], min_saved: int | None = None) -> int:
    """Length of the token prefix every prompt shares, leaving each at least one token of its own;
    0 when sharing it would save fewer than `min_saved` prefill tokens (default `MIN_SAVED_TOKENS`).

    >>> common_prefix([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]], min_saved=4)
    2
    >>> common_prefix([[1, 2, 3], [1, 2, 3]], min_saved=1), common_prefix([[1, 2, 3]], min_saved=0)
    (2, 0)
    >>> common_prefix([[7] * 40 + [1], [7] * 40 + [2]])  # 40 tokens saved: not worth a forward
    0
    """
    if len(prompts) < 2:
        return 0
    first, n = prompts[0], min(len(p) for p in prompts) - 1
    k = 0
    while k < n and all(p[k] == first[k] for p in prompts):
        k += 1
    need = MIN_SAVED_TOKENS if min_saved is None else min_saved
    return k if k and k * (len(prompts) - 1) >= need else 0


@torch.no_grad()
def decode_groups(
    model: Any,
    prompts: list[list[int]],
    n: int,
    *,
    max_new_tokens: int,
    temperature: float,
    top_k: int,
    top_p: float,
    pad_id: int,
    stop_ids: set[int],
    device: Any,
    share_prefill: bool = True,
    slab_cache: bool = True,
    share_prefix: bool = True,
) -> list[tuple[list[int], list[float]]]:
    """`n` completions per prompt (row `i * n + j` is sample j of prompt i): token ids cut after
    the first stop token, and their logprobs. Uses the global torch RNG (the caller seeds it)."""
    greedy = temperature == 0
    t = 1.0 if greedy else float(temperature)
    if not share_prefill and n > 1:  # benchmarks only: every sample prefills its own row
        prompts, n = [p for p in prompts for _ in range(n)], 1
    warpers = [] if greedy else _warpers(t, top_k, top_p)
    shared = common_prefix(prompts) if share_prefix else 0
    rest = [p[shared:] for p in prompts]
    width = max(len(p) for p in rest)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), shared + width), dtype=torch.long)
    mask[:, :shared] = 1
    for i, p in enumerate(rest):  # left padding: every row's next token goes to the same column
        ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[i, shared + width - len(p):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    if slab_cache and _plain_attention(model):
        cache = SlabCache(_n_layers(model), shared + width + max_new_tokens)
    else:  # other layer kinds (linear attention...), or benchmarks: transformers' own cache
        from transformers import DynamicCache

        cache = DynamicCache(config=model.config)
    kw = _cache_kwarg(model)
    if shared:  # the prompts' common head (system prompt, chat template) runs once, for one row
        model(input_ids=torch.tensor([prompts[0][:shared]], device=device),
              attention_mask=mask[:1, :shared].to(device), position_ids=pos[:1, :shared].to(device),
              use_cache=True, logits_to_keep=1, **{kw: cache})
        cache.batch_repeat_interleave(len(prompts))
    out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos[:, shared:].to(device),
                use_cache=True, logits_to_keep=1, **{kw: cache})
    logits = out.logits[:, -1, :].float()
    del out
    if n > 1:  # the group shares its prompt's cache
        cache.batch_repeat_interleave(n)
        logits = logits.repeat_interleave(n, dim=0)
        mask = mask.repeat_interleave(n, dim=0)
    mask = mask.to(device)
    next_pos = (pos[:, -1] + 1).repeat_interleave(n).to(device)
    rows = len(prompts) * n
    row_of = torch.arange(rows)  # batch position -> output row
    live = torch.ones(rows, dtype=torch.bool)
    toks: list[list[int]] = [[] for _ in range(rows)]
    lps: list[list[float]] = [[] for _ in range(rows)]
    stops = torch.tensor(sorted(stop_ids), dtype=torch.long, device=device)
    for step in range(max_new_tokens):
        logp = (logits / t).log_softmax(-1)
        if greedy:
            chosen = logits.argmax(-1)
        else:
            scores = logits
            for w in warpers:
                scores = w(None, scores)
            chosen = torch.multinomial(scores.softmax(-1), 1)[:, 0]
        chosen_lp = logp.gather(-1, chosen[:, None])[:, 0].cpu().tolist()
        chosen_l = chosen.cpu().tolist()
        for b in live.nonzero()[:, 0].tolist():
            r = int(row_of[b])
            toks[r].append(chosen_l[b])
            lps[r].append(chosen_lp[b])
        live &= ~torch.isin(chosen, stops).cpu()
        n_live = int(live.sum())
        if n_live == 0 or step == max_new_tokens - 1:
            break
        if rows - n_live >= max(1, rows // 8):  # compact: finished rows leave the batch and the cache
            keep = live.nonzero()[:, 0]
            cache.batch_select_indices(keep.to(device))
            chosen, mask, next_pos, row_of = chosen[keep.to(device)], mask[keep.to(device)], \
                next_pos[keep.to(device)], row_of[keep]
            live = torch.ones(n_live, dtype=torch.bool)
            rows = n_live
        mask = torch.cat([mask, mask.new_ones(rows, 1)], dim=1)
        out = model(input_ids=chosen[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                    use_cache=True, **{kw: cache})
        logits = out.logits[:, -1, :].float()
        del out
        next_pos = next_pos + 1
    return list(zip(toks, lps))
