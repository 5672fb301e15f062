"""The phase-blind GRPO learner, its losses and advantages, the curriculum, checkpoints and metrics.

Entry point: `srlkit.train.run.train(cfg: TrainConfig) -> Path` (the run folder), or
`srlkit train --curriculum srl,rlvr`.

    batch.py       RolloutBatch (shapes noted) and collation: left-padded prompt + right-padded completion
    advantages.py  group-normalised advantages (std scaling switchable)
    loss.py        objectives (clip, gspo, cispo), k3 KL, token/seq/Dr.GRPO aggregation
    mismatch.py    engine/trainer importance weights: per token or sequence, truncated or masked
    learner.py     Learner.update(batch): mu steps, micro-batches + accumulation, clipping, AdamW, schedule
    forward.py     one micro-batch's completion log-probs: plain or packed layout, attention kernel, head
    head.py        the LM head in token chunks: log p(token) and entropy without [N, L, V] logits
    packing.py     a group's prompt once, its completions in slots (4D mask or FlexAttention block mask)
    pack_policy.py whether a micro-batch is packed, and with which kernel (a cost rule fitted to timings)
    model.py       policy + tokenizer, LoRA (peft), KL reference (adapter disabled; no second copy)
    data.py        the phase's table, chat template, seeded per-epoch order with a resumable cursor
    groups.py      the only phase-aware code: generate -> score -> dynamic sampling -> advantages (or sft targets)
    logprobs.py    per-token log-probs and entropy from full logits in fp32 chunks (heads head.py cannot chunk)
    dist.py        accelerate: one prepare, rank-aware seeds and cursors, all-reduce helpers
    memory.py      the --dry-run per-GPU memory estimate
    console.py     one line per optimizer step off a terminal, a bar on one
    heldout.py     validation score (greedy reward; -NLL for sft) that picks RUN/<phase>/best
    checkpoint.py  atomic checkpoints (weights/adapter, optimizer, scheduler, RNG, cursor) and HF folders
    metrics.py     metrics.jsonl, eval.jsonl, TensorBoard (+ wandb/trackio), samples/
    curriculum.py  validation of the curriculum, steps per phase, the test-only kill hook
    run.py         Trainer: the curriculum loop, resume, final merged model + adapter

Choices made explicit:
- SFT is the same learner with advantage 1 and old logprobs = current (detached): ratio 1,
  never clipped, so the gradient is exactly the NLL gradient (see learner.py).
- pi_old is the trainer's own log-prob from the first of the `mu` passes (no extra forward);
  the engine's log-probs are the behaviour policy, and each token's loss is weighted by the
  truncated importance ratio min(pi_old / pi_engine, tis_cap), since engine numerics (vLLM
  kernels, bf16, merged LoRA) differ from the trainer's (`loss.tis_mode` also offers masking, and
  the sequence's ratio). Tokens no engine sampled (an expert step placed in a group) carry NaN
  behaviour log-probs and weight 1.
- Truncated completions: `mask` keeps them in their group's reward statistics but drops
  them from the loss; `penalize` replaces their reward; `keep` trains on them as they are.
"""
