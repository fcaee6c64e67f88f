"""Asking through `/v1/completions` (teacher.api: completions), for a model without a usable
chat template: a base model, or a GGUF served in a chat format it was never trained on.

The chat messages (the instruction, the few-shot turns, the input) are written as one text
prompt that a base model continues:

    {instruction}

    Input: {example}
    Answer: {its answer}

    Input: {the input}
    Answer:

and the reply stops at the end of the line. The completion is turned back into the Chat
Completions shape the rest of the teacher engine reads (its logprobs into `content` entries
with `top_logprobs`), so the cache, the canary and the filter see one format.
"""

from __future__ import annotations

import math
from typing import Any

INPUT, ANSWER = "Input:", "Answer:"
STOP = ["\n"]


def prompt_from_messages(messages: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for message in messages:
        content = str(message.get("content") or "")
        if message.get("role") == "system":
            parts.append(content.strip() + "\n\n")
        elif message.get("role") == "user":
            parts.append(f"{INPUT} {content.strip()}\n{ANSWER}")
        else:
            parts.append(f" {content.strip()}\n\n")
    return "".join(parts)


def input_of(prompt: str) -> str:
    """The input a prompt asks about: the text after its last `Input:` (what the stand-in reads)."""
    head = prompt.rpartition(f"{INPUT} ")[2]
    return head.rpartition(f"\n{ANSWER}")[0] if f"\n{ANSWER}" in head else head


def completions_body(chat_body: dict[str, Any]) -> dict[str, Any]:
    """A Chat Completions body as a Completions one: the prompt, the same sampling and constraint
    keys; `logprobs` becomes the number of alternatives per token."""
    body = {k: v for k, v in chat_body.items() if k not in ("messages", "logprobs", "top_logprobs", "response_format")}
    body["prompt"] = prompt_from_messages(chat_body["messages"])
    body["stop"] = STOP
    if chat_body.get("logprobs"):
        body["logprobs"] = int(chat_body.get("top_logprobs") or 1)
    return body


def as_chat_completion(response: dict[str, Any]) -> dict[str, Any]:
    """A `text_completion` response in the Chat Completions shape (a chat one is returned as is)."""
    choices = response.get("choices") or []
    if not choices or "message" in choices[0] or "text" not in choices[0]:
        return response
    return {**response, "object": "chat.completion", "choices": [_chat_choice(c) for c in choices]}


def _chat_choice(choice: dict[str, Any]) -> dict[str, Any]:
    text = str(choice.get("text") or "")
    legacy = choice.get("logprobs") or {}
    tokens = legacy.get("tokens") or []
    content = []
    for i, token in enumerate(tokens):
        logprob = (legacy.get("token_logprobs") or [None] * len(tokens))[i]
        top = (legacy.get("top_logprobs") or [None] * len(tokens))[i] or {}
        content.append(
            {
                "token": token,
                "logprob": logprob if logprob is not None else -math.inf,
                "top_logprobs": [{"token": t, "logprob": lp} for t, lp in sorted(top.items(), key=lambda kv: -kv[1])],
            }
        )
    return {
        "index": choice.get("index", 0),
        "finish_reason": choice.get("finish_reason"),
        "message": {"role": "assistant", "content": text.strip(), "refusal": None},
        "logprobs": {"content": content, "refusal": None} if tokens else None,
    }


def text_completion(chat: dict[str, Any]) -> dict[str, Any]:
    """A Chat Completions response written as a `text_completion` (the stand-in's /v1/completions)."""
    choices = []
    for c in chat.get("choices") or []:
        content = (c.get("message") or {}).get("content") or ""
        entries = (c.get("logprobs") or {}).get("content") or []
        legacy = None
        if entries:
            legacy = {
                "tokens": [e["token"] for e in entries],
                "token_logprobs": [e["logprob"] for e in entries],
                "top_logprobs": [{a["token"]: a["logprob"] for a in e.get("top_logprobs") or []} for e in entries],
                "text_offset": [0] * len(entries),
            }
        choices.append(
            {"index": c.get("index", 0), "text": content, "logprobs": legacy, "finish_reason": c.get("finish_reason")}
        )
    return {**chat, "object": "text_completion", "choices": choices}
