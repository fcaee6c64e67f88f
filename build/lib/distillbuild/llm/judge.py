"""LLM-as-judge over the teacher engine: DeepEval's G-Eval, every judge request cached.

A judge section (`filters.judge`, `evaluation.judge`) names an OpenAI-compatible endpoint
(provider openai: any base_url, key from the environment; provider simulated: the offline
stand-in of distillbuild.endpoints.standin.judge) and G-Eval's `criteria` and/or `evaluation_steps`.
The stages open the endpoint and the cache; `judge_settings` turns the section into the
request settings this engine takes.

How one run goes (`judge_all`):
1. G-Eval (`deepeval.metrics.GEval`, evaluation params Input and Actual Output) runs over every
   (input, output) pair with a `CachedJudgeModel` that knows no answers yet: each pair stops at
   its first judge request, and the prompt is collected. Identical pairs are judged once.
2. All collected prompts are answered by `answer_all`, the teacher engine: the cache
   (.distill/cache, content-addressed by endpoint id + request body) first, then the endpoint
   with bounded concurrency, rate limits, retries and cost accounting. A rerun pays nothing.
3. G-Eval runs again with the answers; pairs that need another request (criteria without
   evaluation_steps: one steps request, shared by all pairs, then the scoring request) repeat
   from 1. With evaluation_steps given that is one judge request per distinct pair.

Scores are G-Eval's, in 0..1: the judge's 0-10 score weighted by its score token's top_logprobs
when `logprobs: true` (20 alternatives requested), else the judge's integer score / 10.

Every failure is a StageError (exit 3): an endpoint that is down or refuses, a request that
still fails after its retries, an answer G-Eval cannot read. Rows are never kept or dropped on
a judge's silence; answers already received stay cached, so the rerun resumes.

deepeval is imported only here, inside functions (it costs 1-2 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from distillbuild.deepeval_env import quiet_deepeval
from distillbuild.errors import StageError
from distillbuild.llm.cache import TeacherCache
from distillbuild.llm.engine import answer_all
from distillbuild.llm.results import RunStats
from distillbuild.llm.settings import TeacherSettings
from distillbuild.spec.model import Judge, build
from distillbuild.spec.schema import apply_defaults, schema

TOP_LOGPROBS = 20  # what G-Eval asks for by default, and OpenAI's maximum
MAX_ROUNDS = 4
METRIC_NAME = "judge"


def import_deepeval() -> tuple[Any, Any, Any]:
    """(GEval, LLMTestCase, SingleTurnParams), imported quietly: the environment above first, and
    the notice deepeval prints on import sent to stderr, where the stages' own progress goes."""
    quiet_deepeval()
    with contextlib.redirect_stdout(sys.stderr):
        from deepeval.metrics import GEval
        from deepeval.test_case import LLMTestCase, SingleTurnParams

        import distillbuild.llm.judge_model  # noqa: F401 - subclasses deepeval's model class
    return GEval, LLMTestCase, SingleTurnParams


def with_defaults(section: Mapping[str, Any]) -> Judge:
    """A typed judge section with the schema's defaults filled in (specs get them when loaded;
    this is for sections built by hand)."""
    judge_schema = schema()["properties"]["filters"]["properties"]["judge"]
    return build(Judge, apply_defaults(dict(section), judge_schema))


def judge_settings(judge: Judge, base_url: str | None, endpoint_id: str, api_key: str) -> TeacherSettings:
    """A judge's request settings: no seed, plain JSON answers, G-Eval's 20 alternatives when `logprobs`."""
    return TeacherSettings.from_section(
        judge,
        base_url=base_url,
        endpoint_id=endpoint_id,
        api_key=api_key,
        top_logprobs=TOP_LOGPROBS if judge.logprobs else 0,
        seed=None,
    )


def describe(judge: Judge) -> str:
    who = f"{judge.provider}:{judge.model}"
    return who + " (SIMULATED stand-in)" if judge.provider == "simulated" else who


@dataclass(frozen=True)
class Judgement:
    score: float  # G-Eval's score in 0..1
    reason: str


@dataclass
class JudgeStats:
    calls: RunStats = field(default_factory=RunStats)  # the judge requests of every round, added up
    rounds: int = 0
    pairs: int = 0  # (input, output) pairs asked about
    distinct_pairs: int = 0
    seconds: float = 0.0

    @property
    def cost_usd(self) -> float:
        return self.calls.cost_usd

    @property
    def billed_calls(self) -> int:
        return self.calls.billed_calls

    @property
    def cache_hits(self) -> int:
        return self.calls.cache_hits

    def as_dict(self) -> dict[str, Any]:
        c = self.calls
        return {
            "pairs": self.pairs,
            "distinct_pairs": self.distinct_pairs,
            # requested: after de-duplication (what the cache was asked for)
            "calls": {
                "requested": c.unique,
                "from_cache": c.cache_hits,
                "billed": c.billed_calls,
                "retries": dict(sorted(c.retries.items())),
            },
            "errors": dict(sorted(c.errors.items())),
            "tokens": {"prompt": c.prompt_tokens, "completion": c.completion_tokens},
            "cost_usd": round(c.cost_usd, 6),
            "rounds": self.rounds,
            "seconds": round(self.seconds, 3),
        }


def _answer(
    prompts: list[str], settings: TeacherSettings, cache: TeacherCache, where: str, log: Callable[[str], None]
) -> tuple[dict[str, dict[str, Any]], RunStats]:
    from distillbuild.llm.judge_model import judge_messages

    try:
        results, stats = answer_all(
            [judge_messages(p) for p in prompts], settings, cache, log=lambda m: log(m.replace("teacher:", "judge:", 1))
        )
    except StageError as exc:  # 401/403/404: the endpoint refused
        raise StageError(str(exc).replace("the teacher endpoint", f"the judge endpoint ({where})", 1)) from None
    failed = [r for r in results if r is None or r.response is None]
    if stats.budget_stopped:
        raise StageError(
            f"judge budget reached: ${stats.cost_usd:.4f} of {where}.budget_usd spent; "
            f"{len(failed)} judge requests not asked. Raise it and rerun: cached verdicts cost nothing."
        )
    if failed:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(stats.errors.items())) or "no answer"
        first = next((r.error for r in failed if r is not None and r.error), "no answer")
        hint = (
            f" If the endpoint does not offer logprobs, set {where}.logprobs: false."
            if stats.errors.get("bad_request") and settings.top_logprobs
            else ""
        )
        raise StageError(
            f"the judge ({settings.model} at {settings.base_url or 'the provider default'}) failed on {len(failed)} "
            f"of {len(prompts)} requests ({kinds}); first: {first}. No row was kept or dropped on its account; "
            f"verdicts already received are cached, so a rerun resumes once {where} answers.{hint}"
        )
    return {p: r.response for p, r in zip(prompts, results)}, stats


def judge_all(
    pairs: list[tuple[str, str]],
    section: Judge,
    settings: TeacherSettings | None,
    cache: TeacherCache | None,
    where: str = "judge",
    log: Callable[[str], None] = print,
) -> tuple[list[Judgement], JudgeStats]:
    """G-Eval's verdict on each (input, actual output) pair, in order. settings and cache: the judge's
    endpoint and the teacher cache, opened by the caller (None only when there are no pairs)."""
    if not pairs:
        return [], JudgeStats()
    GEval, LLMTestCase, SingleTurnParams = import_deepeval()
    from distillbuild.llm.judge_model import CachedJudgeModel  # after import_deepeval: it subclasses deepeval

    t0 = time.monotonic()
    distinct = list(dict.fromkeys(pairs))
    stats = JudgeStats(pairs=len(pairs), distinct_pairs=len(distinct))
    model = CachedJudgeModel(settings, cache, on_miss="raise", label=describe(section))
    run = _GEvalRun(
        metric=_geval_metric(GEval, SingleTurnParams, section, settings, model),
        model=model,
        cases=[LLMTestCase(input=text, actual_output=output) for text, output in distinct],
        inputs=[text for text, _ in distinct],
        where=where,
    )
    _judge_in_rounds(run, settings, cache, stats, log)
    stats.seconds = time.monotonic() - t0
    index = {pair: i for i, pair in enumerate(distinct)}
    return [run.verdicts[index[pair]] for pair in pairs], stats


def _geval_metric(GEval: Any, SingleTurnParams: Any, section: Judge, settings: TeacherSettings, model: Any) -> Any:
    """The G-Eval metric of a judge section, over Input and Actual Output, asking `model`."""
    steps = section.evaluation_steps or None
    return GEval(
        name=METRIC_NAME,
        criteria=section.criteria,
        evaluation_steps=list(steps) if steps else None,
        evaluation_params=[SingleTurnParams.INPUT, SingleTurnParams.ACTUAL_OUTPUT],
        model=model,
        threshold=section.min_score,
        top_logprobs=settings.top_logprobs or TOP_LOGPROBS,
        async_mode=True,
    )


def _judge_in_rounds(
    run: "_GEvalRun", settings: TeacherSettings, cache: TeacherCache, stats: JudgeStats, log: Callable[[str], None]
) -> None:
    """Measure every case, answer the prompts that stopped them, and measure those again, until none
    is left waiting (at most MAX_ROUNDS rounds)."""
    pending = list(range(len(run.cases)))
    while pending:
        if stats.rounds >= MAX_ROUNDS:
            raise StageError(f"G-Eval kept asking the judge new questions after {MAX_ROUNDS} rounds ({run.where})")
        stats.rounds += 1
        asked: dict[str, None] = {}
        waiting: list[int] = []
        asyncio.run(run.measure(pending, asked, waiting))
        if asked:
            answers, calls = _answer(list(asked), settings, cache, run.where, log)
            stats.calls.add(calls)
            run.model.responses.update(answers)
        pending = waiting


@dataclass
class _GEvalRun:
    """One G-Eval metric over the distinct cases, and the verdicts it has given so far."""

    metric: Any
    model: Any  # the CachedJudgeModel the metric asks
    cases: list[Any]  # LLMTestCase per distinct pair
    inputs: list[str]  # the input of each case, for messages
    where: str
    verdicts: dict[int, Judgement] = field(default_factory=dict)

    async def measure(self, indices: list[int], asked: dict[str, None], waiting: list[int]) -> None:
        """One round over `indices`: a case that stops at an unanswered judge request adds its prompt
        to `asked` and its index to `waiting`; the others get their verdict."""
        from distillbuild.llm.judge_model import NeedAnswer, content_of  # loaded by judge_all already

        # One metric, one case at a time: G-Eval keeps its result on the metric object.
        metric, model = self.metric, self.model
        for i in indices:
            try:
                await metric.a_measure(self.cases[i], _show_indicator=False)
            except NeedAnswer as need:
                asked.setdefault(need.prompt)
                waiting.append(i)
                continue
            except StageError:
                raise
            except Exception as exc:  # noqa: BLE001 - an answer G-Eval cannot read
                answer = content_of(model.responses.get(model.last_prompt or "", {}))
                raise StageError(
                    f"G-Eval could not read the judge's answer for input {self.inputs[i][:60]!r} "
                    f"({type(exc).__name__}: {str(exc)[:200]}); the judge said: {answer[:200]!r}. "
                    f"Use a judge model that answers in JSON ({self.where}.model)."
                ) from None
            self.verdicts[i] = self._verdict(i)

    def _verdict(self, i: int) -> Judgement:
        score = self.metric.score
        if score is None or not math.isfinite(float(score)):
            raise StageError(f"G-Eval gave no score for input {self.inputs[i][:60]!r} ({self.where}): {score}")
        return Judgement(min(max(float(score), 0.0), 1.0), str(self.metric.reason or ""))
