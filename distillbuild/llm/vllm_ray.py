"""Processor (distillbuild.llm.engine) that answers the uncached calls with vLLM engine replicas
on the Ray cluster (teacher.provider: vllm), through Ray Data's LLM processor (ray.data.llm).

Ray Data places `replicas` engine actors (each `tensor_parallel_size` GPUs), feeds them batches
and streams the answers back. The driver turns each output row into the chat completion `vllm
serve` would have answered (llm/vllm_rows.py) and writes it to the cache as it arrives: a run
killed with -9 loses only the rows in the engines at that moment, and the rerun asks for those
alone. A row the engine fails on (a prompt longer than max_model_len, say) comes back with its
error and counts as an error row, as a failed call does online; a dead engine is restarted by
Ray Data and its rows retried.

A self-hosted engine bills nothing per token; with teacher.price and budget_usd set (a GPU's
cost per token, say), only the rows whose most possible cost fits the budget are handed over,
so the cap holds however the replicas share them.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from distillbuild.llm.cache import TeacherCache
from distillbuild.llm.results import CallResult, RunStats, most_cost, record_answer
from distillbuild.llm.settings import TeacherSettings
from distillbuild.llm.vllm_rows import KEY_COLUMN, TOKEN_IDS_COLUMN, TOP_COLUMN, completion, request_row
from distillbuild.spec.model import VllmEngine

# What the driver reads of an output row; the rest (prompt token ids, metrics) stays on the cluster.
OUTPUT_COLUMNS = (
    KEY_COLUMN,
    TOKEN_IDS_COLUMN,
    TOP_COLUMN,
    "generated_text",
    "generated_tokens",
    "num_generated_tokens",
    "num_input_tokens",
    "logprobs",
)
ERROR_COLUMN = "__inference_error__"  # Ray Data's, set on a row the engine failed on
NO_TELEMETRY = {"RAY_USAGE_STATS_ENABLED": "0", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}

# (the engine settings, the run's settings) -> a callable from a Ray Dataset of request rows to
# one of output rows: Ray Data's vLLM processor (build_vllm_processor), or a test's engine.
ProcessorBuilder = Callable[[VllmEngine, TeacherSettings], Callable[[Any], Any]]


def engine_config(engine: VllmEngine, settings: TeacherSettings):
    """Ray Data's vLLMEngineProcessorConfig for teacher.vllm and the teacher's model."""
    from ray.data.llm import vLLMEngineProcessorConfig

    engine_kwargs: dict[str, Any] = {
        "tensor_parallel_size": engine.tensor_parallel_size,
        "gpu_memory_utilization": engine.gpu_memory_utilization,
        "max_logprobs": max(20, settings.top_logprobs),  # vLLM refuses more alternatives than this
    }
    if engine.max_model_len is not None:
        engine_kwargs["max_model_len"] = engine.max_model_len
    return vLLMEngineProcessorConfig(
        model_source=settings.model,
        concurrency=engine.replicas,
        batch_size=engine.batch_size,
        accelerator_type=engine.accelerator_type,
        engine_kwargs=engine_kwargs,
        should_continue_on_error=True,  # a failed row comes back with its error, as a failed call does
        runtime_env={"env_vars": NO_TELEMETRY},
        log_engine_metrics=False,
    )


def build_vllm_processor(engine: VllmEngine, settings: TeacherSettings):
    from ray.data.llm import build_processor

    return build_processor(
        engine_config(engine, settings),
        postprocess=lambda row: {name: row.get(name) for name in OUTPUT_COLUMNS},
    )


class VllmProcessor:
    def __init__(self, engine: VllmEngine, build: ProcessorBuilder = build_vllm_processor):
        self.engine = engine
        self.build = build

    def run(
        self,
        items: list[tuple[str, dict[str, Any]]],
        settings: TeacherSettings,
        cache: TeacherCache,
        stats: RunStats,
        log: Callable[[str], None],
    ) -> dict[str, CallResult]:
        import ray.data

        asked = self._within_budget(items, settings, stats.cost_usd)
        if len(asked) < len(items):
            stats.budget_stopped = True
            log(f"teacher: the budget allows {len(asked):,} of {len(items):,} calls at most; the rest are not asked")
        if not asked:
            return {}
        engine = self.engine
        log(
            f"teacher: {len(asked):,} calls to {settings.model} in {engine.replicas} vLLM replica(s) "
            f"of {engine.tensor_parallel_size} GPU(s) on Ray"
        )
        processor = self.build(engine, settings)
        rows = ray.data.from_items([request_row(key, body) for key, body in asked])
        results: dict[str, CallResult] = {}
        t0, every = time.monotonic(), max(1, len(asked) // 20)
        for row in processor(rows).iter_rows():  # streamed: each answer cached as it comes back
            key = row[KEY_COLUMN]
            error = row.get(ERROR_COLUMN)
            if error:
                stats.bump(stats.errors, "engine_error")
                results[key] = CallResult(None, False, f"engine_error: {str(error)[:300]}")
            else:
                stats.billed_calls += 1
                response = completion(row, settings.model, settings.max_tokens)
                results[key] = record_answer(key, response, settings, cache, stats)
            if len(results) % every == 0 or len(results) == len(asked):
                rate = len(results) / max(time.monotonic() - t0, 1e-9)
                log(f"teacher: {len(results):,} of {len(asked):,} answered ({rate:.1f}/s)")
        return results

    @staticmethod
    def _within_budget(items: list[tuple[str, dict[str, Any]]], settings: TeacherSettings, spent: float):
        """The first calls whose most possible cost, added up, stays within what the budget has left."""
        if settings.budget_usd is None:
            return items
        room, fits = settings.budget_usd - spent, 0
        for item in items:
            room -= most_cost([item], settings)
            if room < 0:
                break
            fits += 1
        return items[:fits]
