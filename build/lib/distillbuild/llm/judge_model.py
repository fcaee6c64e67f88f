"""A DeepEval model whose every request goes through the project's cache and OpenAI-compatible client.

Imported lazily (it imports deepeval, ~1.3 s): `distillbuild.llm.judge` sets DeepEval's quiet
environment first. G-Eval asks `a_generate_raw_response(prompt, top_logprobs=...)` for its score
and weights it by the score token's top_logprobs; this model returns the cached Chat Completion
as the openai SDK's `ChatCompletion`, so the weighting works whenever the judge's settings ask for
logprobs (without them G-Eval falls back to the judge's integer score). Evaluation steps (criteria
without steps) come through `a_generate`.

Two ways to answer a prompt the model has not seen:
- on_miss="raise": raise NeedAnswer(prompt). `judge_all` runs G-Eval over every row, collects the
  prompts, answers them all at once with `answer_all` (bounded concurrency, rate limits, retries,
  cache, cost), hands the answers to the model and runs G-Eval again;
- on_miss="call": answer it now, one request through `answer_all` (cached), for use as a plain
  DeepEval model: `GEval(..., model=CachedJudgeModel(settings, cache))`.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, Callable

from distillbuild.deepeval_env import quiet_deepeval

quiet_deepeval()  # before deepeval is first imported: no telemetry, no .deepeval/, no .env

from deepeval.models import DeepEvalBaseLLM  # noqa: E402

from distillbuild.errors import StageError  # noqa: E402
from distillbuild.llm.cache import TeacherCache  # noqa: E402
from distillbuild.llm.engine import answer_all  # noqa: E402
from distillbuild.llm.results import RunStats  # noqa: E402
from distillbuild.llm.settings import TeacherSettings  # noqa: E402


class NeedAnswer(Exception):
    """The judge has no answer to this prompt yet (on_miss="raise"). Not an AttributeError: G-Eval
    treats those as "no logprobs support" and would retry through another path."""

    def __init__(self, prompt: str):
        super().__init__("judge prompt not answered yet")
        self.prompt = prompt


def judge_messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def _namespace(value: Any) -> Any:
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _namespace(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_namespace(v) for v in value]
    return value


def as_chat_completion(response: dict[str, Any]) -> Any:
    """The SDK's ChatCompletion for a cached body (attribute access, as G-Eval reads it)."""
    try:
        from openai.types.chat import ChatCompletion

        return ChatCompletion.model_validate(response)
    except Exception:  # noqa: BLE001 - a provider's odd extra fields: plain attributes will do
        return _namespace(response)


def content_of(response: dict[str, Any]) -> str:
    choices = response.get("choices") or [{}]
    return str(((choices[0] or {}).get("message") or {}).get("content") or "")


class CachedJudgeModel(DeepEvalBaseLLM):
    def __init__(
        self,
        settings: TeacherSettings,
        cache: TeacherCache,
        *,
        on_miss: str = "call",
        log: Callable[[str], None] = lambda _m: None,
        label: str | None = None,
    ):
        if on_miss not in ("call", "raise"):
            raise ValueError("on_miss is 'call' or 'raise'")
        self.settings, self.cache, self.on_miss, self.log = settings, cache, on_miss, log
        self.label = label or settings.model
        self.responses: dict[str, dict[str, Any]] = {}
        self.last_prompt: str | None = None  # for error messages: the answer G-Eval read last
        self.stats: list[RunStats] = []  # one per answer_all call made by this model itself
        super().__init__(settings.model)

    def load_model(self, *args: Any, **kwargs: Any) -> "CachedJudgeModel":
        return self

    def get_model_name(self, *args: Any, **kwargs: Any) -> str:
        return self.label

    # --- answers ---

    def _response(self, prompt: str) -> dict[str, Any]:
        self.last_prompt = prompt
        known = self.responses.get(prompt)
        if known is not None:
            return known
        if self.on_miss == "raise":
            raise NeedAnswer(prompt)
        results, stats = answer_all([judge_messages(prompt)], self.settings, self.cache, log=self.log)
        self.stats.append(stats)
        result = results[0]
        if result is None or result.response is None:
            raise StageError(
                f"the judge ({self.settings.model}) gave no answer: "
                f"{(result.error if result else 'the judge budget stopped the run')}"
            )
        self.responses[prompt] = result.response
        return result.response

    async def _a_response(self, prompt: str) -> dict[str, Any]:
        if prompt in self.responses or self.on_miss == "raise":
            return self._response(prompt)
        # answer_all runs its own event loop: give it a thread of its own.
        return await asyncio.to_thread(self._response, prompt)

    # --- the DeepEvalBaseLLM interface ---

    def generate(self, prompt: str, *args: Any, schema: Any = None, **kwargs: Any) -> str:
        return content_of(self._response(prompt))

    async def a_generate(self, prompt: str, *args: Any, schema: Any = None, **kwargs: Any) -> str:
        return content_of(await self._a_response(prompt))

    def generate_raw_response(self, prompt: str, top_logprobs: int | None = None, **kwargs: Any) -> tuple[Any, None]:
        # top_logprobs is the judge's setting (part of the cached request), not G-Eval's argument.
        return as_chat_completion(self._response(prompt)), None

    async def a_generate_raw_response(
        self, prompt: str, top_logprobs: int | None = None, **kwargs: Any
    ) -> tuple[Any, None]:
        return as_chat_completion(await self._a_response(prompt)), None

    def supports_log_probs(self) -> bool:
        return self.settings.top_logprobs > 0
