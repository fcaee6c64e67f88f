"""The one-screen summary of the last build: each stage of the spec's pipeline gives its own
lines, read from what it wrote (a stage's `summary_lines`), in pipeline order."""

from __future__ import annotations

from distillbuild.pipeline import stage_list
from distillbuild.spec import Spec


def summary_text(spec: Spec) -> str:
    lines = [f"distill summary: {spec.name}"]
    for stage in stage_list.of_spec(spec):
        lines += stage.summary_lines(spec)
    return "\n".join(lines)
