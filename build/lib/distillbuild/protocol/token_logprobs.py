"""Per-token teacher distributions for logit distillation into a causal-LM student.

A teacher served by vLLM with `return_tokens_as_token_ids: true` names each token in its
logprobs as `token_id:N`, N an id in the teacher's vocabulary. When the student shares that
vocabulary, the top-k ids and logprobs at every generated position are exactly what Axolotl's
KD dataset type (`axolotl.integrations.kd.chat_template`) trains on: `target_token_ids` and
`logprobs`, one top-k list per position, aligned to the end of the tokenized conversation.
"""

from __future__ import annotations

from typing import Any

PREFIX = "token_id:"


def parse_token_id(token: Any) -> int | None:
    if isinstance(token, str) and token.startswith(PREFIX):
        try:
            return int(token[len(PREFIX) :])
        except ValueError:
            return None
    return None


def kd_targets(logprobs: dict[str, Any] | None) -> dict[str, Any] | None:
    """{"token_ids", "target_token_ids", "logprobs"} from one choice's logprobs, or None when any
    position lacks token ids or alternatives (an OpenAI-hosted model, or a teacher asked without
    return_tokens_as_token_ids): a row is distilled at every position or not at all."""
    content = (logprobs or {}).get("content") or []
    if not content:
        return None
    chosen, ids, values = [], [], []
    for position in content:
        token_id = parse_token_id(position.get("token"))
        top = position.get("top_logprobs") or []
        top_ids = [parse_token_id(alt.get("token")) for alt in top]
        if token_id is None or not top or any(i is None for i in top_ids):
            return None
        chosen.append(token_id)
        ids.append(top_ids)
        values.append([float(alt.get("logprob", float("-inf"))) for alt in top])
    k = min(len(row) for row in ids)  # Axolotl needs one k for the whole row
    return {"token_ids": chosen, "target_token_ids": [row[:k] for row in ids], "logprobs": [row[:k] for row in values]}
