"""Measure peak memory over two learner updates (a subprocess of tests/train/test_memory.py).

    python tests/helpers/memory_probe.py MODEL_DIR MICRO_BATCH PROMPT_LEN COMPLETION_LEN [LORA_R [CKPT]]
    python tests/helpers/memory_probe.py MODEL_DIR CASES     # CASES: mbs:p:c:lora_r:ckpt,... (one process)

Prints one JSON line per case with `peak`, in bytes: on a GPU `torch.cuda.max_memory_allocated`
(reset per case); on CPU the allocator's peak, i.e. the bytes of the model's parameters and
buffers plus the highest running total of torch's CPU allocations during the updates, read from
`torch.profiler`'s memory events (what the estimate models: no heap fragmentation, no Python
objects). `rss` is the process's peak resident set growth from just before the first model load,
for comparison. CKPT = 1 turns gradient checkpointing on. Packing is off: the rows share one
prompt, and the plain layout is measured.
"""

import json
import resource
import sys


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def hwm() -> int:
    """This process's peak RSS (VmHWM: its own address space; ru_maxrss would carry the parent's
    peak across fork + exec, so a probe started from a big pytest process would read that)."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def allocator_peak(prof) -> int:
    """Highest running sum of the CPU allocator's allocations (+) and frees (-) in a profile."""
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    run = peak = 0
    for e in events:
        if e.device_type().name == "CPU":
            run += e.nbytes()
            peak = max(peak, run)
    return peak


def measure(model_dir: str, mbs: int, p: int, c: int, lora_r: int = 0, ckpt: int = 0) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from srlkit.config import LoraConfig, LossConfig, ModelConfig, PhaseConfig
    from srlkit.train.batch import collate
    from srlkit.train.learner import Learner
    from srlkit.train.model import load_policy

    gpu = torch.cuda.is_available()
    if gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    policy = load_policy(ModelConfig(name_or_path=model_dir, pack_prompts=False, gradient_checkpointing=bool(ckpt),
                                     lora=LoraConfig(enabled=lora_r > 0, r=max(lora_r, 1))))
    learner = Learner(policy, LossConfig())
    learner.begin_phase(PhaseConfig(lr=1e-5, micro_batch_size=mbs), total_steps=2)
    # completions of c, 7c/8, 6c/8, 5c/8 tokens: right padding, as in any real batch (so the
    # attention gets a mask, as it does in training)
    batch = collate([[5 + k % 7 for k in range(p)]] * mbs, [[9 + k % 11 for k in range(c - (i % 4) * c // 8)]
                                                            for i in range(mbs)],
                    [(-1.0) ** i for i in range(mbs)], pad_id=0)
    if gpu:
        for _ in range(2):
            learner.update(batch)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        model = learner.model
        static = sum(t.nbytes for t in model.parameters()) + sum(t.nbytes for t in model.buffers())
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            for _ in range(2):
                learner.update(batch)
        peak = static + allocator_peak(prof)
    del learner, policy
    return {"case": [mbs, p, c, lora_r, ckpt], "peak": peak, "device": "cuda" if gpu else "cpu"}


def main(model_dir: str, *args: str) -> None:
    from srlkit.train.model import load_tokenizer

    load_tokenizer(model_dir)
    base = rss()
    cases = [[int(x) for x in a.split(":")] for a in args[0].split(",")] if args and ":" in args[0] else \
        [[int(x) for x in args]]
    for case in cases:
        print(json.dumps(measure(model_dir, *case) | {"rss": hwm() - base}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
