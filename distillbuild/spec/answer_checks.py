"""Semantic checks of how the teacher's answers are asked and read: the label constraint
(teacher.answer_format), the endpoint (teacher.api), and the filter's confidence
(filters.confidence, filters.calibration, a fitted filters.min_confidence)."""

from __future__ import annotations

from typing import Iterator, Mapping

from distillbuild.spec.model import SpecModel

Issues = Iterator[tuple[str, str]]  # (key path, message)


def answer_issues(spec: SpecModel) -> Issues:
    yield from _choice_issues(spec)
    yield from _api_issues(spec)
    yield from _confidence_issues(spec)


def _choice_issues(spec: SpecModel) -> Issues:
    teacher = spec.teacher
    if teacher.answer_format != "choice":
        return
    if spec.task.type != "classification":
        yield "teacher.answer_format", "choice holds answers to task.labels: it needs task.type: classification"
        return
    mode = teacher.reasoning.mode if teacher.reasoning is not None else None
    if mode in ("prompt", "field"):
        yield (
            "teacher.answer_format",
            (
                f"choice holds the whole answer to a label, and teacher.reasoning ({mode} mode) "
                "asks for reasoning before it: use answer_format: text, or reasoning mode explain"
            ),
        )
    known = teacher.provider in ("llamacpp", "vllm") or (teacher.provider == "openai" and teacher.base_url is None)
    if teacher.choice_constraint is None and not known:
        yield (
            "teacher.choice_constraint",
            (
                "answer_format: choice needs the constraint's form for this endpoint: grammar "
                "(llama.cpp), guided_choice (vLLM) or json_schema (OpenAI structured outputs)"
            ),
        )


def _api_issues(spec: SpecModel) -> Issues:
    teacher = spec.teacher
    if teacher.api != "completions":
        return
    if teacher.batch:
        yield (
            "teacher.api",
            "completions is asked online only: the Batch API takes chat requests (teacher.batch: false)",
        )
    if teacher.choice_constraint == "json_schema":
        yield (
            "teacher.choice_constraint",
            "json_schema is a chat response format: with teacher.api: completions use grammar or guided_choice",
        )
    if teacher.reasoning is not None:
        yield "teacher.api", "teacher.reasoning asks in chat turns: use teacher.api: chat"


def _confidence_issues(spec: SpecModel) -> Issues:
    classification = spec.task.type == "classification"
    target, measure = spec.filters.min_confidence, spec.filters.confidence
    fitted = isinstance(target, Mapping)
    if fitted and not classification:
        yield "filters.min_confidence", "a fitted threshold reads labelled rows: it needs task.type: classification"
    if spec.teacher.top_logprobs == 0 and (fitted or measure == "calibrated"):
        yield (
            "filters.min_confidence" if fitted else "filters.confidence",
            "needs the teacher's logprobs; set teacher.top_logprobs >= 1",
        )
    if measure == "calibrated" and not classification:
        yield "filters.confidence", "calibrated confidence is over task.labels: it needs task.type: classification"
