"""Measure one process's peak memory over two learner updates (a subprocess of test_train_memory).

    python tests/helpers/memory_probe.py MODEL_DIR MICRO_BATCH PROMPT_LEN COMPLETION_LEN [LORA_R]

Prints JSON: the peak resident-set growth from just before the model load (CPU), or
torch.cuda.max_memory_allocated (GPU), in bytes.
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


def main(model_dir: str, mbs: int, p: int, c: int, lora_r: int = 0) -> None:
    import torch

    from srlkit.config import LoraConfig, LossConfig, ModelConfig, PhaseConfig
    from srlkit.train.batch import collate
    from srlkit.train.learner import Learner
    from srlkit.train.model import load_policy, load_tokenizer

    load_tokenizer(model_dir)
    gpu = torch.cuda.is_available()
    base = rss()
    # the rows share one prompt; packing is off so the plain layout's formula is what is measured
    policy = load_policy(ModelConfig(name_or_path=model_dir, pack_prompts=False,
                                     lora=LoraConfig(enabled=lora_r > 0, r=max(lora_r, 1))))
    learner = Learner(policy, LossConfig())
    learner.begin_phase(PhaseConfig(lr=1e-5, micro_batch_size=mbs), total_steps=2)
    batch = collate([[5 + k % 7 for k in range(p)]] * mbs, [[9 + k % 11 for k in range(c)]] * mbs,
                    [(-1.0) ** i for i in range(mbs)], pad_id=0)
    for _ in range(2):
        learner.update(batch)
    if gpu:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = hwm() - base
    print(json.dumps({"peak": peak, "device": "cuda" if gpu else "cpu"}))


if __name__ == "__main__":
    main(sys.argv[1], *(int(x) for x in sys.argv[2:]))
