"""Measure one process's peak memory over two learner updates (a subprocess of tests/train/test_memory.py).

    python tests/helpers/memory_probe.py MODEL_DIR MICRO_BATCH PROMPT_LEN COMPLETION_LEN [LORA_R [CKPT]]

Prints JSON with `peak`, in bytes: on a GPU `torch.cuda.max_memory_allocated`; on CPU the
allocator's peak, i.e. the bytes of the model's parameters and buffers plus the highest running
total of torch's CPU allocations during the updates, read from `torch.profiler`'s memory events
(what the estimate models: no heap fragmentation, no Python objects). `rss` is the peak resident
set growth from just before the model load, for comparison. CKPT = 1 turns gradient
checkpointing on. Packing is off: the rows share one prompt, and the plain layout is measured.
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


def main(model_dir: str, mbs: int, p: int, c: int, lora_r: int = 0, ckpt: int = 0) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from srlkit.config import LoraConfig, LossConfig, ModelConfig, PhaseConfig
    from srlkit.train.batch import collate
    from srlkit.train.learner import Learner
    from srlkit.train.model import load_policy, load_tokenizer

    load_tokenizer(model_dir)
    gpu = torch.cuda.is_available()
    base = rss()
    policy = load_policy(ModelConfig(name_or_path=model_dir, pack_prompts=False, gradient_checkpointing=bool(ckpt),
                                     lora=LoraConfig(enabled=lora_r > 0, r=max(lora_r, 1))))
    learner = Learner(policy, LossConfig())
    learner.begin_phase(PhaseConfig(lr=1e-5, micro_batch_size=mbs), total_steps=2)
    batch = collate([[5 + k % 7 for k in range(p)]] * mbs, [[9 + k % 11 for k in range(c)]] * mbs,
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
    print(json.dumps({"peak": peak, "rss": hwm() - base, "device": "cuda" if gpu else "cpu"}))


if __name__ == "__main__":
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
