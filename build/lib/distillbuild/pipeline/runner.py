"""Run one stage of a spec's pipeline: what `distill stage NAME` (and so dvc.yaml) calls.

A stage run from a stale dvc.yaml would track the wrong params, so it refuses with the fix instead.
"""

from __future__ import annotations

import os

from distillbuild.errors import EXIT_OK, StageError
from distillbuild.pipeline import stage_list
from distillbuild.pipeline.compile import dvc_yaml_path, render
from distillbuild.spec import Spec


def check_compiled(spec: Spec) -> None:
    target = dvc_yaml_path(spec)
    if target.exists() and target.read_text(encoding="utf-8") != render(spec):
        raise StageError(
            f"{target.name} is stale for {spec.path.name}: run `distill compile`, then `dvc repro` again",
        )


def run_stage(name: str, spec: Spec) -> int:
    """Run stage `name` with the spec's directory as working directory; return its exit code."""
    stage = stage_list.by_name(name)
    if not stage.applies(spec):
        raise StageError(f"{spec.path.name} does not ask for the {name} stage (add an `{name}` section)")
    check_compiled(spec)
    # Library progress bars would flood DVC's log; stages print their own progress.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.chdir(spec.dir)
    code = stage.run(spec)
    return EXIT_OK if code is None else code
