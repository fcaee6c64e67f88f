"""Who answers a request: the student when its confidence reaches the route's threshold (or
always, without a route), else the spec's teacher, asked as the teacher stage asks it.

The student is whatever serving/students.py opened (ONNX or PyTorch encoder, GGUF under llama.cpp
or a transformers causal LM). Every answer says which model gave it. A teacher that fails makes
that request fail with the reason; the student keeps answering the others. A teacher that
answers with no label (a small one does) leaves the student's answer standing, counted as
`teacher_unusable`. A causal student whose answer names no label has confidence 0: routed when
the spec routes, else its words are the answer, counted as `student_unlabelled`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Callable

from distillbuild import layout
from distillbuild.errors import StageError
from distillbuild.io import read_json
from distillbuild.llm.settings import TeacherSettings
from distillbuild.protocol.choice import labels_of, unwrap_json_choice
from distillbuild.protocol.explain import in_reply
from distillbuild.protocol.normalize import normalize_label
from distillbuild.protocol.prompts import messages_for
from distillbuild.protocol.reasoning import split_reply
from distillbuild.serve.batcher import MicroBatcher
from distillbuild.serve.telemetry import Telemetry
from distillbuild.spec import Spec
from distillbuild.spec.inputs import load_examples


class TeacherUnavailable(Exception):
    """The fallback teacher could not answer: the request fails with this reason."""


@dataclass(frozen=True)
class Answer:
    label: str | None  # None: a student answer that names no label (`content` holds its words)
    content: str
    model: str  # which model answered
    routed: bool  # sent to the teacher
    confidence: float  # the student's probability of its own label
    probabilities: dict[str, float]  # the student's, over the labels
    teacher_label: str | None = None  # the teacher's label, when the route asked it and it gave one


def route_threshold(spec: Spec) -> float | None:
    """The threshold the route stage fitted, or None (the student answers everything)."""
    if spec.route is None:
        return None
    report = spec.dir / layout.ROUTE_REPORT
    if not report.is_file():
        raise StageError(f"{spec.path.name} routes, but {layout.ROUTE_REPORT} is missing: run `dvc repro` first")
    threshold = read_json(report).get("threshold")
    return float("inf") if threshold is None else float(threshold)


class Router:
    """Answers a text: the student through its micro-batcher, the teacher (async, so a slow one
    holds no thread) for what the route sends it. Counts each answer in `telemetry`."""

    def __init__(
        self,
        spec: Spec,
        student: MicroBatcher,
        student_name: str,
        threshold: float | None,
        teacher: TeacherSettings | None,
        telemetry: Telemetry,
        mask: Callable[[str], str] | None = None,
    ):
        self.task, self.labels = spec.task, list(spec.task.labels)
        self.reasoning = spec.teacher.reasoning  # asked as the teacher stage asks: prompt mode reasons first
        self.student, self.student_name, self.threshold = student, student_name, threshold
        self.examples = load_examples(spec.task.examples, spec.task.input_template, spec.dir)
        self.teacher, self.telemetry = teacher, telemetry
        self.mask = mask  # data.scrub at the `route` door: the teacher gets the request masked
        self._client = None
        if teacher is not None:
            from openai import AsyncOpenAI  # lazy: the SDK is slow to import

            self._client = AsyncOpenAI(
                base_url=teacher.base_url,
                api_key=teacher.api_key or "not-needed",
                timeout=teacher.timeout_s,
                max_retries=teacher.max_retries,
            )
        self._answered = self._routed = 0

    async def answer(self, text: str) -> Answer:
        said = await self.student.answer(text)
        own = Answer(said.label, said.label or said.text, self.student_name, False, said.confidence, said.probabilities)
        routed = self.threshold is not None and said.confidence < self.threshold
        if not routed:
            self._count("student" if said.label else "student_unlabelled")
            return own
        asked = await asyncio.to_thread(self.mask, text) if self.mask is not None else text
        label = await self._ask_teacher(asked)
        if label is None:  # the teacher answered, but with no label: the student's answer stands, said so
            self._count("teacher_unusable")
            return replace(own, routed=True)
        self._count("teacher")
        return replace(own, label=label, content=label, model=self.teacher.model, routed=True, teacher_label=label)

    async def _ask_teacher(self, text: str) -> str | None:
        if self._client is None:
            raise TeacherUnavailable("the route sends this request to the teacher, but no teacher is open")
        try:
            response = await self._client.chat.completions.create(  # held to the labels as the teacher stage asks
                model=self.teacher.model,
                messages=messages_for(self.task, text, self.examples, self.reasoning),
                temperature=self.teacher.temperature,
                max_tokens=self.teacher.max_tokens,
                extra_body=self.teacher.constraint or None,
            )
        except Exception as exc:  # the SDK's connection, timeout and status errors alike
            self.telemetry.teacher_errors.inc()
            raise TeacherUnavailable(
                f"the teacher ({self.teacher.model} at {self.teacher.base_url}) did not answer: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        message = response.choices[0].message
        reasoning = in_reply(self.reasoning)
        answer = split_reply(message.model_dump(), None, reasoning).answer if reasoning else message.content
        if labels_of(self.teacher.constraint or {}) and labels_of(self.teacher.constraint)[0] == "json_schema":
            answer = unwrap_json_choice({"message": {"content": answer}})["message"]["content"]
        return normalize_label(answer, self.labels)  # a reply with no answer line has no label

    def _count(self, source: str) -> None:
        self.telemetry.answers.labels(source).inc()
        self._answered += 1
        self._routed += source in ("teacher", "teacher_unusable")
        self.telemetry.share_routed.set(self._routed / self._answered)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
