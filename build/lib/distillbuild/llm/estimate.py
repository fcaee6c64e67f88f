"""What a teacher run will cost, before anything is spent.

Prompt tokens are exact where the model's encoding is known (bpe-openai ships OpenAI's
cl100k_base and o200k_base offline), plus OpenAI's chat framing (3 tokens a message, 3 to
prime the reply). Otherwise a stated heuristic: 4 characters a token. Completion tokens:
an upper bound (max_tokens) and, for classification, an expectation (the longest label).
Requests the cache already holds cost nothing and are counted apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

TOKENS_PER_MESSAGE = 3
REPLY_PRIMING = 3


# Model families by name prefix, for names the package does not list (dated or fine-tuned variants).
_PREFIXES = (
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
)


def encoding_name(model: str) -> str | None:
    import bpe_openai

    try:
        return bpe_openai.encoding_name_for_model(model)
    except Exception:  # noqa: BLE001 - not listed: try the family
        base = model.split(":")[1] if model.startswith("ft:") else model.split("/")[-1]  # ft:BASE:org::id
        return next((enc for prefix, enc in _PREFIXES if base.startswith(prefix)), None)


def encoder_for(model: str) -> tuple[Callable[[str], int] | None, str]:
    """(token counter, method) for a model name."""
    try:
        import bpe_openai

        name = encoding_name(model)
        if name is None:
            raise LookupError(model)
        encoding = bpe_openai.get_encoding(name)
        return (lambda text: len(encoding.encode(text))), f"exact ({name})"
    except Exception:  # noqa: BLE001 - unknown model or package missing: fall back, and say so
        return None, "heuristic (4 characters a token; the model's encoding is not known here)"


def count_prompt_tokens(messages: list[dict[str, str]], counter: Callable[[str], int] | None) -> int:
    if counter is None:
        return sum(len(m.get("content", "")) // 4 + TOKENS_PER_MESSAGE for m in messages) + REPLY_PRIMING
    return (
        sum(counter(m.get("content", "")) + counter(m.get("role", "")) + TOKENS_PER_MESSAGE for m in messages)
        + REPLY_PRIMING
    )


@dataclass(frozen=True)
class Estimate:
    model: str
    token_method: str
    requests: int
    unique: int
    cached: int
    to_call: int
    prompt_tokens: int  # of the calls still to make
    completion_tokens_max: int
    completion_tokens_expected: int
    cost_usd_max: float | None
    cost_usd_expected: float | None
    budget_usd: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(
    requests: list[list[dict[str, str]]],
    bodies_keys: list[str],
    cached_keys: set[str],
    *,
    model: str,
    max_tokens: int,
    labels: Sequence[str] | None,
    price_in: float | None,
    price_out: float | None,
    budget_usd: float | None,
) -> Estimate:
    counter, method = encoder_for(model)
    seen: set[str] = set()
    prompt, calls = 0, 0
    for messages, key in zip(requests, bodies_keys):
        if key in seen or key in cached_keys:
            seen.add(key)
            continue
        seen.add(key)
        calls += 1
        prompt += count_prompt_tokens(messages, counter)
    expected_each = max_tokens
    if labels:
        longest = max((counter(label) if counter else len(label) // 4 + 1) for label in labels)
        expected_each = min(max_tokens, longest + 1)
    cost = (
        (lambda completion: (prompt * price_in + completion * (price_out or 0)) / 1e6) if price_in is not None else None
    )
    return Estimate(
        model=model,
        token_method=method,
        requests=len(requests),
        unique=len(seen),
        cached=len(seen & cached_keys),
        to_call=calls,
        prompt_tokens=prompt,
        completion_tokens_max=calls * max_tokens,
        completion_tokens_expected=calls * expected_each,
        cost_usd_max=round(cost(calls * max_tokens), 4) if cost else None,
        cost_usd_expected=round(cost(calls * expected_each), 4) if cost else None,
        budget_usd=budget_usd,
    )
