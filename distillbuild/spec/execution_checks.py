"""Semantic checks of `execution`: Ray there when asked for, and each stage's keys where they apply."""

from __future__ import annotations

import importlib.util
from typing import Iterator

from distillbuild.spec.model import SpecModel

Issues = Iterator[tuple[str, str]]  # (key path, message)

RAY_EXTRA = "pip install 'distillbuild[ray]'"


def ray_installed() -> bool:
    try:
        return importlib.util.find_spec("ray") is not None
    except ValueError:  # a module set to None in sys.modules (how a test hides it)
        return False


def execution_issues(spec: SpecModel) -> Issues:
    execution = spec.execution
    if execution is None:
        return
    if execution.engine == "ray" and not ray_installed():
        yield "execution.engine", f"engine: ray needs Ray in this environment: {RAY_EXTRA}"
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
