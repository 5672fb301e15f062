"""Stage 3: split a solution into steps.

Strategies: `numbered` (`N.`, `N)`, `Step N:`, `**Step N**`, `### Step N`, multi-line
bodies; `N. **Title** body` gives a title), `paragraph` (blank lines; single lines when
there is no blank line), `sentence` (spaCy), `turns` (chat agents, see `turns.py`),
`given` (the source already holds a list of steps) and `auto`, which picks per row:
numbered when at least two markers count up from 1, else paragraph when that gives
two or more steps, else sentence. Then length limits merge tiny (untitled) steps into
their neighbour and split giant ones at sentence/line boundaries.

Numbered: only markers at the outer indentation level are steps (an indented sub-list
stays inside its step), and text before "1." that is more than a header ("SOLUTION:",
"## Solution", other headings) is kept as its own untitled first step, or merged into
step 1 when shorter than --min-step-chars (`Segmented.preamble` records which).
Paragraph: markdown heading lines are never steps; a heading other than a generic
"Solution"/"Answer" becomes the title of the paragraph under it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from srlkit.data.sources import Reject

_MARK = re.compile(
    r"^(?P<ind>[ \t]*)(?P<head>#{1,6}[ \t]*)?(?P<bold>\*\*)?"
    r"(?:step[ \t]*(?P<sn>\d{1,3})[ \t]*[:.)\-]?|(?P<n>\d{1,3})[.)](?=[ \t*]|$))",
    re.IGNORECASE | re.MULTILINE,
)
_MARK_LINE = re.compile(_MARK.pattern, re.IGNORECASE)  # one line at a time: `$` is the line's end
_TITLE = re.compile(r"^\*\*(?P<t>[^*\n]{1,200}?)\*\*[ \t]*[:.\-–—]?[ \t]*")
_PARA = re.compile(r"\n[ \t]*\n+")
_SPLIT_AT = re.compile(r"(?<=[.!?;])[ \t]+|\n+")
_HEADER = re.compile(r"^\s*(?:\*\*)?SOLUTION:?(?:\*\*)?\s*$", re.IGNORECASE)
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]+(?P<t>\S[^\n]*?)[ \t#]*$")
_GENERIC = re.compile(
    r"^(?:\*\*)?(?:solutions?|answers?|final answers?|proof|analysis)(?:[ \t]*\d+)?[ \t]*[.:]?(?:\*\*)?$", re.IGNORECASE)


def _is_header(line: str) -> bool:
    """A line that only announces the solution: "SOLUTION:", "## Solution.", "**Answer:**"."""
    h = _HEADING.match(line)
    return bool(_HEADER.match(line) or _GENERIC.match(line.strip()) or (h and _GENERIC.match(h.group("t"))))


@dataclass
class Segmented:
    strategy: str
    steps: list[str]  # step bodies
    titles: list[str | None]
    # numbered: what became of the text before "1.": None (none, or only a header), "step" (its
    # own untitled first step) or "merged" (shorter than --min-step-chars: the start of step 1)
    preamble: str | None = None


def _markers(lines: list[str], level: int | None) -> tuple[list[tuple], int | None, int | None]:
    """Markers counting 1, 2, 3... at indentation `level` (None: the first "1"'s), plus the level
    used and the smallest indentation of any "1" marker."""
    marks, expect, pos, low = [], 1, 0, None
    for line in lines:
        m = _MARK_LINE.match(line)
        if m is not None:
            sn, n = m.group("sn", "n")
            k, ind = int(sn or n), m.end("ind")
            if k == 1 and (low is None or ind < low):
                low = ind
            if k == expect and (level is None or ind == level):
                level = ind
                marks.append((pos, pos + m.end(), bool(m.group("head")), bool(m.group("bold"))))
                expect += 1
        pos += len(line) + 1
    return marks, level, low


def numbered(text: str) -> Segmented | None:
    """Steps at outer-level markers counting 1, 2, 3...; other markers stay inside a body.

    >>> s = numbered("SOLUTION:\\n1. **Add** 1+1=2\\n2. **Double** 2*2=4\\nso 4.")
    >>> s.titles, s.steps
    (['Add', 'Double'], ['1+1=2', '2*2=4\\nso 4.'])
    >>> numbered("We add.\\n1. **Add** 1+1=2\\n2. **Double** 2*2=4").steps
    ['We add.', '1+1=2', '2*2=4']
    """
    # Markers sit at line starts (`^` under re.M), so only line starts are tried: matching
    # each line is exact and far cheaper than letting the regex scan every character.
    lines = text.split("\n")
    marks, level, low = _markers(lines, None)
    if level != low:  # a nested "1." came first: the outer list is the least indented one
        marks, level, low = _markers(lines, low)
    if len(marks) < 2:
        return None
    steps, titles = [], []
    for i, (_, stop, head, bold) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        title, body = _split_title(text[stop:end], head, bold)
        steps.append(body)
        titles.append(title)
    head = text[: marks[0][0]].split("\n") if marks[0][0] else ()
    pre = "\n".join(ln for ln in head if not (_is_header(ln) or _HEADING.match(ln))).strip()
    if pre:
        return Segmented("numbered", [pre, *steps], [None, *titles], preamble="step")
    return Segmented("numbered", steps, titles)


def _split_title(raw: str, heading: bool, bold_open: bool) -> tuple[str | None, str]:
    raw = raw.strip()
    title, body = None, raw
    if bold_open:  # `**Step 1: Title**` or `**Step 1**`: the bold closes on the first line
        first, _, rest = raw.partition("\n")
        if "**" in first:
            t, _, after = first.partition("**")
            title = t.strip(" :.-") or None
            body = (after.lstrip(" :.-") + "\n" + rest).strip()
    elif (m := _TITLE.match(raw)) is not None:  # the paper's `N. **Title** action`
        title, body = m.group("t").strip(" :."), raw[m.end() :].strip()
    elif heading:  # `### Step 1: Title` then the body on the next lines
        first, _, rest = raw.partition("\n")
        if rest.strip():
            title, body = first.strip(" :.-*") or None, rest.strip()
    if not body:  # a title with no body: the title is the step
        title, body = None, title or ""
    return title, body


def paragraph(text: str) -> Segmented:
    """Blank-line paragraphs (single lines when there is no blank line); headings are titles.

    >>> paragraph("## Solution.\\nLet t = 1.\\n\\n### Check\\nSo t > 0.").steps
    ['Let t = 1.', 'So t > 0.']
    """
    parts = [p.strip() for p in _PARA.split(text.strip()) if p.strip()]
    if len(parts) == 1:
        parts = [ln.strip() for ln in parts[0].splitlines() if ln.strip()]
    steps, titles, pending = [], [], None
    for part in parts:
        lines = part.split("\n")
        while lines and (_is_header(lines[0]) or _HEADING.match(lines[0])):
            h = _HEADING.match(lines[0])
            if h and not _is_header(lines[0]):
                pending = h.group("t").strip(" :.*") or pending
            lines = lines[1:]
        body = "\n".join(lines).strip()
        if body:
            steps.append(body)
            titles.append(pending)
            pending = None
    return Segmented("paragraph", steps, titles)


_NLP = None


def sentence(text: str) -> Segmented:
    global _NLP
    if _NLP is None:
        from srlkit.assets import spacy_nlp

        _NLP = spacy_nlp()
    # a sentence never crosses a blank line (the small senter model sometimes merges across one)
    paras = [p for p in _PARA.split(text.strip()) if p.strip()]
    sents = [s.text.strip() for doc in _NLP.pipe(paras) for s in doc.sents if s.text.strip()]
    return Segmented("sentence", sents, [None] * len(sents))


def segment_text(text: str, strategy: str) -> Segmented:
    """Split one text solution with `strategy` (auto picks and records per row)."""
    if strategy == "numbered":
        return numbered(text) or Segmented("numbered", [], [])
    if strategy == "paragraph":
        return paragraph(text)
    if strategy == "sentence":
        return sentence(text)
    found = numbered(text)
    if found:
        return found
    para = paragraph(text)
    return para if len(para.steps) >= 2 else sentence(text)


def _pieces(text: str, max_chars: int) -> list[str] | None:
    """Pack sentence/line pieces greedily into chunks of at most max_chars (None: impossible)."""
    out, cur = [], ""
    for piece in _SPLIT_AT.split(text):
        if len(piece) > max_chars:
            return None
        if cur and len(cur) + 1 + len(piece) > max_chars:
            out.append(cur)
            cur = piece
        else:
            cur = f"{cur} {piece}" if cur else piece
    if cur:
        out.append(cur)
    return out


def apply_limits(seg: Segmented, *, min_chars: int, max_chars: int, min_steps: int,
                 max_steps: int) -> Segmented | Reject:
    """Merge untitled steps shorter than min_chars into the next one, split longer than max_chars.

    A titled step (`N. **Title** body`) is a step however short its body is.
    """
    steps, titles = [], []
    carry, carry_title = "", None
    for body, title in zip(seg.steps, seg.titles):
        if carry:
            body, title = f"{carry}\n{body}", carry_title or title
            carry, carry_title = "", None
        if len(body) < min_chars and not title:
            carry, carry_title = body, title
            continue
        steps.append(body)
        titles.append(title)
    if carry:
        if steps:
            steps[-1] = f"{steps[-1]}\n{carry}"
        else:
            steps, titles = [carry], [carry_title]
    out_s, out_t = [], []
    for body, title in zip(steps, titles):
        if len(body) <= max_chars:
            out_s.append(body)
            out_t.append(title)
            continue
        chunks = _pieces(body, max_chars)
        if chunks is None:
            return Reject("step_too_long", f"a step of {len(body)} chars has no split point under {max_chars}")
        out_s += chunks
        out_t += [title] + [None] * (len(chunks) - 1)
    if not out_s:
        return Reject("no_steps", f"strategy {seg.strategy} found no steps")
    if len(out_s) < min_steps:
        return Reject("too_few_steps", f"{len(out_s)} < {min_steps} ({seg.strategy})")
    if len(out_s) > max_steps:
        return Reject("too_many_steps", f"{len(out_s)} > {max_steps} ({seg.strategy})")
    pre = seg.preamble
    if pre == "step" and seg.steps and len(seg.steps[0]) < min_chars:
        pre = "merged"
    return Segmented(seg.strategy, out_s, out_t, pre)
