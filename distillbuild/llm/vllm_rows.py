"""The teacher's requests as rows for Ray Data's vLLM processor, and its output rows as chat
completions (teacher.provider: vllm).

Everything after the call (the cache, soft labels, the constraint's unwrapping, answers.jsonl)
reads OpenAI's chat completion. So a vLLM row goes in with the same sampling settings the body
would send to `vllm serve` (temperature, max_tokens, top logprobs, seed, the label constraint as
vLLM's structured outputs) and comes back as the completion that server would have answered:
the text, each generated token with its logprob and its top alternatives, and the token counts.
"""

from __future__ import annotations

import json
import math
from typing import Any

KEY_COLUMN = "distill_cache_key"  # the row's cache key, carried through every stage
TOKEN_IDS_COLUMN = "distill_token_ids"  # tokens named `token_id:N`, as vLLM's return_tokens_as_token_ids
TOP_COLUMN = "distill_top_logprobs"  # alternatives asked per token (vLLM adds the sampled one when outside them)


def request_row(key: str, body: dict[str, Any]) -> dict[str, Any]:
    """A processor input row for one chat request body (settings.body)."""
    params: dict[str, Any] = {"temperature": body.get("temperature", 1.0), "max_tokens": body["max_tokens"]}
    if body.get("logprobs"):
        params["logprobs"] = int(body.get("top_logprobs") or 0)
    if body.get("seed") is not None:
        params["seed"] = int(body["seed"])
    structured = _structured_outputs(body)
    if structured:
        params["structured_outputs"] = structured
    return {
        KEY_COLUMN: key,
        TOKEN_IDS_COLUMN: bool(body.get("return_tokens_as_token_ids")),
        TOP_COLUMN: int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0,
        "messages": body["messages"],
        "sampling_params": params,
    }


def _structured_outputs(body: dict[str, Any]) -> dict[str, Any] | None:
    """The label constraint (protocol/choice.py) as vLLM's StructuredOutputsParams keys. A JSON
    schema travels as text: Arrow cannot hold an arbitrary schema as one column type."""
    if isinstance(body.get("guided_choice"), list):
        return {"choice": [str(x) for x in body["guided_choice"]]}
    if isinstance(body.get("grammar"), str):
        return {"grammar": body["grammar"]}
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return {"json": json.dumps((fmt.get("json_schema") or {}).get("schema") or {})}
    if fmt.get("type") == "json_object":
        return {"json_object": True}
    return None


def completion(row: dict[str, Any], model: str, max_tokens: int) -> dict[str, Any]:
    """The chat completion `vllm serve` would answer for a processor output row."""
    generated = [int(t) for t in (row.get("generated_tokens") or [])]
    produced = int(row.get("num_generated_tokens") or len(generated))
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": row.get("generated_text") or ""},
        "finish_reason": "length" if produced >= max_tokens else "stop",
    }
    positions = row.get("logprobs")
    if positions is not None:
        as_ids, top = bool(row.get(TOKEN_IDS_COLUMN)), int(row.get(TOP_COLUMN) or 0)
        choice["logprobs"] = {
            "content": [
                _position(p, generated[i] if i < len(generated) else None, top, as_ids) for i, p in enumerate(positions)
            ]
        }
    prompt_tokens = int(row.get("num_input_tokens") or 0)
    return {
        "object": "chat.completion",
        "model": model,
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": produced,
            "total_tokens": prompt_tokens + produced,
        },
    }


def _position(alternatives: Any, sampled: int | None, top: int, as_ids: bool) -> dict[str, Any]:
    """One generated token: {token, logprob, top_logprobs} from vLLM's {token_id: {logprob, rank,
    decoded_token}}. The sampled token is always there, ranked wherever it ranks; the top
    alternatives are those ranked 1..top, best first, as OpenAI lists them."""
    entries = [(int(token_id), info) for token_id, info in _items(alternatives)]

    def named(token_id: int, info: dict[str, Any]) -> dict[str, Any]:
        token = f"token_id:{token_id}" if as_ids else str(info.get("decoded_token") or "")
        return {"token": token, "logprob": _finite(info.get("logprob"))}

    chosen = next((e for e in entries if e[0] == sampled), None) or min(entries, key=lambda e: e[1].get("rank") or 0)
    ranked = sorted((e for e in entries if 1 <= (e[1].get("rank") or 0) <= top), key=lambda e: e[1]["rank"])
    return {**named(*chosen), "top_logprobs": [named(*e) for e in ranked]}


def _items(alternatives: Any):
    """A position's entries whichever way Arrow handed them back: a dict, or (key, value) pairs
    (a map column), with None for token ids absent from this position (a struct column)."""
    pairs = alternatives.items() if isinstance(alternatives, dict) else alternatives
    return [(k, v) for k, v in pairs if v is not None]


def _finite(value: Any) -> float:
    """-inf (a token the constraint forbade) as the most negative float JSON can carry."""
    number = float(value if value is not None else -9999.0)
    return number if math.isfinite(number) else -9999.0
