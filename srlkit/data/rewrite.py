"""Optional LLM rewrite of a solution into the paper's template, before segmentation.

    SOLUTION:
    1. **Short imperative title** the operations of the step
    2. **...** ...

A fixed two-shot prompt asks for that form; `check_format` accepts only outputs that
follow it (and keep the final answer when the original had one). Anything else is a
`rewrite_format` reject; an endpoint/model failure is a `rewrite_error` reject.
Backends: an OpenAI-compatible endpoint (`/chat/completions`, stdlib urllib; e.g. `vllm serve`),
or in-process vLLM or transformers (greedy, so reruns give the same text).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable

from srlkit.data.answers import extract_answer
from srlkit.data.sources import Reject
from srlkit.errors import SrlkitError

SYSTEM = (
    "Rewrite the given math solution as numbered steps. Start with the line 'SOLUTION:'. "
    "Then write one line per step in the form 'N. **Title** action', where Title is a short "
    "imperative phrase and action holds the equations and operations of that step. Keep every "
    "computation and the final answer in \\boxed{}. Write nothing else."
)
SHOTS = [
    ("Problem: What is 3 + 4 * 2?\nSolution: Multiplication comes first, 4*2 = 8, and then 3 + 8 = 11, so the answer is 11.",
     "SOLUTION:\n1. **Multiply first** 4 * 2 = 8.\n2. **Add the rest** 3 + 8 = \\boxed{11}."),
    ("Problem: Solve 2x + 6 = 10.\nSolution: Subtracting 6 gives 2x = 4. Dividing by two, x = 2.",
     "SOLUTION:\n1. **Subtract 6 from both sides** 2x + 6 - 6 = 10 - 6, so 2x = 4.\n"
     "2. **Divide by 2** x = 4 / 2 = \\boxed{2}."),
]
_LINE = re.compile(r"^(\d+)\. \*\*([^*\n]+)\*\* ?(.*)$")


def messages(problem: str, solution: str) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": SYSTEM}]
    for user, assistant in SHOTS:
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    msgs.append({"role": "user", "content": f"Problem: {problem}\nSolution: {solution}"})
    return msgs


def check_format(text: str, original: str | None = None) -> str | None:
    """The cleaned rewrite when it follows the template, else None.

    >>> check_format("SOLUTION:\\n1. **Add** 1+1=2\\n2. **Box** \\\\boxed{2}")
    'SOLUTION:\\n1. **Add** 1+1=2\\n2. **Box** \\\\boxed{2}'
    >>> check_format("1. add\\n2. box") is None
    True
    """
    lines = [ln.rstrip() for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) < 3 or lines[0].strip() != "SOLUTION:":  # the header and at least two steps
        return None
    n = 0
    for ln in lines[1:]:
        m = _LINE.match(ln)
        if m is None:
            return None
        if int(m.group(1)) != n + 1 or not m.group(3).strip():
            return None
        n += 1
    if original is not None:
        want = extract_answer(original)
        if want is not None and extract_answer(text) != want:
            return None  # the rewrite lost or changed the answer
    return "\n".join(lines)


def endpoint_backend(url: str, model: str | None, timeout: float = 120.0) -> Callable[[list], str]:
    base = url.rstrip("/")
    target = base if base.endswith("/chat/completions") else base + "/chat/completions"

    def call(msgs: list[dict]) -> str:
        body = json.dumps({"model": model or "default", "messages": msgs, "temperature": 0,
                           "max_tokens": 2048}).encode()
        req = urllib.request.Request(target, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read().decode("utf-8"))
        return data["choices"][0]["message"]["content"]

    return call


def local_backend(model: str | None, max_new_tokens: int = 512) -> Callable[[list], str]:
    from srlkit.extras import require

    require("train", "--rewrite without --rewrite-endpoint (a local model)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from srlkit.assets import resolve_model

    path = resolve_model(model)
    tok = AutoTokenizer.from_pretrained(path)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    lm.eval()

    def call(msgs: list[dict]) -> str:
        ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            out = lm.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                              pad_token_id=tok.pad_token_id or tok.eos_token_id)
        return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    return call


def vllm_backend(model: str | None, max_new_tokens: int = 2048) -> Callable[[list], str]:
    """An in-process vLLM engine (greedy). For a separate server, give its URL as the endpoint."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        raise SrlkitError("--rewrite-engine vllm needs vLLM: `pip install -e \".[vllm]\"`, or serve a model "
                          "and pass --rewrite-endpoint URL") from None
    from srlkit.assets import resolve_model

    llm = LLM(model=resolve_model(model))
    params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)

    def call(msgs: list[dict]) -> str:
        return llm.chat([msgs], params, use_tqdm=False)[0].outputs[0].text

    return call


def make_rewriter(endpoint: str | None, model: str | None, max_new_tokens: int = 512,
                  engine: str = "transformers") -> Callable[[str, str], str | Reject]:
    """`(problem, solution) -> rewritten text | Reject`: an endpoint when given, else `engine` in-process."""
    if endpoint:
        backend = endpoint_backend(endpoint, model)
    elif engine == "vllm":
        backend = vllm_backend(model, max(max_new_tokens, 2048))
    else:
        backend = local_backend(model, max_new_tokens)

    def rewrite(problem: str, solution: str) -> str | Reject:
        try:
            text = backend(messages(problem, solution))
        except (urllib.error.URLError, OSError, KeyError, IndexError, ValueError) as e:
            return Reject("rewrite_error", f"{type(e).__name__}: {e}"[:200])
        ok = check_format(text, solution)
        return ok if ok is not None else Reject("rewrite_format", text[:200])

    return rewrite
