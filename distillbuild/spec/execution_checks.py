"""Semantic checks of `execution`: Ray there when asked for, and each stage's keys where they apply."""

from __future__ import annotations

import importlib.util
from typing import Iterator

from distillbuild.spec.model import SpecModel

Issues = Iterator[tuple[str, str]]  # (key path, message)

RAY_EXTRA = "pip install 'distillbuild[ray]'"


def ray_installed(*also: str) -> bool:
    """Ray (and the modules `also` names) importable here, without importing them."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("ray", *also))
    except ValueError:  # a module set to None in sys.modules (how a test hides it)
        return False


# What Ray Data (ray.data.llm, for teacher.provider: vllm) needs beside Ray itself: ray[data].
RAY_DATA_MODULES = ("pandas", "pyarrow")


def execution_issues(spec: SpecModel) -> Issues:
    execution = spec.execution
    if execution is None:
        return
    if execution.engine == "ray" and not ray_installed():
        yield "execution.engine", f"engine: ray needs Ray in this environment: {RAY_EXTRA}"
    yield from _vllm_issues(spec)
    for stage in ("filter", "train"):
        resources = getattr(execution, stage, None)
        if resources is not None and resources.endpoints:
            yield f"execution.{stage}.endpoints", "endpoints are where the teacher's calls go: execution.teacher only"
    teacher = execution.teacher
    if teacher is not None and teacher.endpoints and spec.teacher is not None and spec.teacher.provider != "openai":
        yield (
            "execution.teacher.endpoints",
            "more endpoints serve an OpenAI-compatible teacher (teacher.provider: openai), "
            f"not {spec.teacher.provider}",
        )


def _vllm_issues(spec: SpecModel) -> Issues:
    """teacher.provider: vllm runs engine replicas through Ray Data: a Ray engine, Ray Data on
    the driver, and requests the processor can carry (one chat answer per row)."""
    teacher = spec.teacher
    if teacher is None or teacher.provider != "vllm":
        return
    if spec.execution is None or spec.execution.engine != "ray":
        yield "teacher.provider", "vllm runs engine replicas on a Ray cluster: set execution.engine: ray"
    elif not ray_installed(*RAY_DATA_MODULES):
        yield "teacher.provider", f"vllm runs through Ray Data (ray.data.llm), not installed here: {RAY_EXTRA}"
    if teacher.batch:
        yield "teacher.batch", "the Batch API is an endpoint's; vLLM replicas take the rows directly: remove it"
    if (teacher.samples or 1) > 1:  # semantic checks see the spec as written: defaults may be absent
        yield "teacher.samples", "Ray Data's vLLM stage returns one answer per row: samples must be 1 with vllm"
    if teacher.api not in (None, "chat"):
        yield "teacher.api", "provider vllm applies the model's chat template: api must be chat"
