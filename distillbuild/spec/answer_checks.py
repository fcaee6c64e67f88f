"""Semantic checks of how the teacher's answers are asked and read: the label constraint
(teacher.answer_format), the endpoint (teacher.api), and the filter's confidence
(filters.confidence, filters.calibration, a fitted filters.min_confidence)."""

from __future__ import annotations

from typing import Any, Iterator

from distillbuild.spec.loader import get_path

Issues = Iterator[tuple[str, str]]  # (key path, message)


def answer_issues(data: Any) -> Issues:
    yield from _choice_issues(data)
    yield from _api_issues(data)
    yield from _confidence_issues(data)


def _choice_issues(data: Any) -> Issues:
    if get_path(data, "teacher.answer_format") != "choice":
        return
    if get_path(data, "task.type") != "classification":
        yield "teacher.answer_format", "choice holds answers to task.labels: it needs task.type: classification"
        return
    mode = get_path(data, "teacher.reasoning.mode")
    if mode in ("prompt", "field"):
        yield (
            "teacher.answer_format",
            (
                f"choice holds the whole answer to a label, and teacher.reasoning ({mode} mode) "
                "asks for reasoning before it: use answer_format: text, or reasoning mode explain"
            ),
        )
    provider, base_url = get_path(data, "teacher.provider"), get_path(data, "teacher.base_url")
    known = provider == "llamacpp" or (provider == "openai" and base_url is None)
    if get_path(data, "teacher.choice_constraint") is None and not known:
        yield (
            "teacher.choice_constraint",
            (
                "answer_format: choice needs the constraint's form for this endpoint: grammar "
                "(llama.cpp), guided_choice (vLLM) or json_schema (OpenAI structured outputs)"
            ),
        )


def _api_issues(data: Any) -> Issues:
    if get_path(data, "teacher.api") != "completions":
        return
    if get_path(data, "teacher.batch"):
        yield (
            "teacher.api",
            "completions is asked online only: the Batch API takes chat requests (teacher.batch: false)",
        )
    if get_path(data, "teacher.choice_constraint") == "json_schema":
        yield (
            "teacher.choice_constraint",
            "json_schema is a chat response format: with teacher.api: completions use grammar or guided_choice",
        )
    if get_path(data, "teacher.reasoning") is not None:
        yield "teacher.api", "teacher.reasoning asks in chat turns: use teacher.api: chat"


def _confidence_issues(data: Any) -> Issues:
    classification = get_path(data, "task.type") == "classification"
    target = get_path(data, "filters.min_confidence")
    fitted = isinstance(target, dict)
    if fitted and not classification:
        yield "filters.min_confidence", "a fitted threshold reads labelled rows: it needs task.type: classification"
    measure = get_path(data, "filters.confidence")
    logprobs = get_path(data, "teacher.top_logprobs")
    if logprobs == 0 and (fitted or measure == "calibrated"):
        yield (
            "filters.min_confidence" if fitted else "filters.confidence",
            "needs the teacher's logprobs; set teacher.top_logprobs >= 1",
        )
    if measure == "calibrated" and not classification:
        yield "filters.confidence", "calibrated confidence is over task.labels: it needs task.type: classification"
