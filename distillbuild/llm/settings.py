"""What one teacher (or judge) run sends and how: the request body, the pace, the price."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distillbuild.llm.completions import completions_body
from distillbuild.spec.model import Endpoint, VllmEngine


@dataclass(frozen=True)
class RayCalls:
    """Online calls spread over a Ray cluster (llm/ray_calls.py): where, and how many tasks at once."""

    endpoints: tuple[str, ...]  # base URLs serving the same model; the first is the section's base_url
    workers: int
    num_cpus: float = 1.0
    api_key_env: str | None = None  # the workers read the key from their own environment: never sent


@dataclass(frozen=True)
class TeacherSettings:
    endpoint_id: str  # the endpoint's stable identity in cache keys (never the key, never a random port)
    base_url: str | None
    model: str
    temperature: float
    max_tokens: int
    top_logprobs: int
    seed: int | None
    concurrency: int
    timeout_s: float
    max_retries: int
    price_in_per_mtok: float | None = None
    price_out_per_mtok: float | None = None
    budget_usd: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    batch: bool = False  # the Batch API instead of online calls
    samples: int = 1  # choices per prompt (`n`), for self-consistency
    response_format: dict[str, Any] | None = None  # structured output for extraction tasks
    token_ids: bool = False  # vLLM's return_tokens_as_token_ids, for logit distillation
    constraint: dict[str, Any] | None = None  # the label constraint's body keys (protocol/choice.py)
    api: str = "chat"  # chat | completions (llm/completions.py rewrites the body for the latter)
    api_key: str = field(default="", repr=False)  # held in memory only
    ray: RayCalls | None = None  # where the calls run, never what they ask: not in any cache key
    vllm: VllmEngine | None = None  # teacher.provider: vllm: engine replicas on Ray (llm/vllm_ray.py)
    shared_limits: bool = False  # one of several runs sharing the endpoint's rpm/tpm: no first burst

    @classmethod
    def from_section(
        cls,
        section: Endpoint,
        *,
        base_url: str | None,
        endpoint_id: str,
        api_key: str,
        top_logprobs: int,
        seed: int | None,
        response_format: dict[str, Any] | None = None,
        batch: bool = False,
        samples: int = 1,
        token_ids: bool = False,
        constraint: dict[str, Any] | None = None,
        api: str = "chat",
    ) -> "TeacherSettings":
        """Settings of a spec section (teacher, filters.judge, evaluation.judge; defaults applied).
        What differs between a teacher and a judge comes as arguments: top_logprobs, seed and
        response_format; batch, samples, token_ids, constraint and api are a teacher's only."""
        price, limits = section.price, section.rate_limit
        return cls(
            endpoint_id=endpoint_id,
            base_url=base_url,
            model=section.model,
            temperature=section.temperature,
            max_tokens=section.max_tokens,
            top_logprobs=top_logprobs,
            seed=seed,
            concurrency=section.concurrency,
            timeout_s=section.timeout_s,
            max_retries=section.max_retries,
            price_in_per_mtok=price.input_per_mtok if price else None,
            price_out_per_mtok=price.output_per_mtok if price else None,
            budget_usd=section.budget_usd,
            rpm=limits.rpm if limits else None,
            tpm=limits.tpm if limits else None,
            batch=batch,
            samples=samples,
            response_format=response_format,
            token_ids=token_ids,
            constraint=constraint,
            api=api,
            api_key=api_key,
        )

    def body(self, messages: list[dict[str, str]], seed: int | None = None) -> dict[str, Any]:
        """The request body; `seed` (one request's own sampling seed) wins over the section's."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.top_logprobs > 0:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
            if self.token_ids:
                body["return_tokens_as_token_ids"] = True
        if seed is not None or self.seed is not None:
            body["seed"] = seed if seed is not None else self.seed
        if self.samples > 1:
            body["n"] = self.samples
        if self.response_format is not None:
            body["response_format"] = self.response_format
        if self.constraint:
            body.update(self.constraint)
        return completions_body(body) if self.api == "completions" else body

    def cost(self, usage: dict[str, Any] | None) -> float:
        if not usage or self.price_in_per_mtok is None:
            return 0.0
        return (
            usage.get("prompt_tokens", 0) * self.price_in_per_mtok
            + usage.get("completion_tokens", 0) * (self.price_out_per_mtok or 0)
        ) / 1e6
