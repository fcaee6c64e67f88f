"""A generator's reply read as candidate inputs.

One input asked: the reply is the input (surrounding quotes, a code fence or an "Input:" label
removed). Several: a JSON array of strings (or of objects with a text field), else a numbered
or bulleted list. A reply that is neither is unparsable: the report counts it.
"""

from __future__ import annotations

import json
import re

_FENCE = re.compile(r"^```[a-zA-Z]*\n(.*?)\n?```$", re.S)
_LABEL = re.compile(r"^(?:new )?(?:input|e-?mail|message|text)\s*(?:\d+)?\s*:\s*", re.I)
_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s+(.*)$")
_QUOTES = ('"', "'", "\u201c", "\u201d")


def _unwrap(text: str) -> str:
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    for _ in range(2):  # "Input: ..." in quotes, or quoted after the label
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
            text = text[1:-1].strip()
        text = _LABEL.sub("", text, count=1).strip()
    return text


def _from_json(text: str) -> list[str] | None:
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        items = json.loads(text[start : end + 1])
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    out = []
    for item in items:  # an item that is no text stays, empty, for the selection to count
        if isinstance(item, dict):
            item = next((item[k] for k in ("text", "input", "content") if isinstance(item.get(k), str)), None)
        out.append(item.strip() if isinstance(item, str) else "")
    return out or None


def _from_list(text: str) -> list[str] | None:
    items: list[str] = []
    for line in text.splitlines():
        item = _ITEM.match(line)
        if item:
            items.append(_unwrap(item.group(1)))
        elif items and line.strip():  # a continuation of the item above
            items[-1] = f"{items[-1]}\n{line.strip()}"
    return items or None


def content_text(content) -> str | None:
    """A message's content as text: a string, or the text of its content parts."""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict)) or None
    return content if isinstance(content, str) else None


def read_reply(content: str | None, asked: int, cut_off: bool = False) -> list[str] | None:
    """The candidate inputs in a reply, in order; None when it cannot be read. A reply cut off at
    max_tokens: its complete items (a JSON array's, salvaged up to its last complete string)."""
    if content is None or not content.strip():
        return None
    if cut_off and asked > 1:
        text = _unwrap(content)
        start = text.find("[")
        if start >= 0 and "]" not in text[start:]:  # an array that never closed: close it after its last item
            last = text.rfind('",')
            return _from_json(text[start : last + 1] + "]") if last > start else None
    if asked == 1:
        return [_unwrap(content)]
    text = _unwrap(content)
    return _from_json(text) or _from_list(text)
