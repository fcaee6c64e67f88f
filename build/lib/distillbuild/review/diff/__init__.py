"""`distill diff [BASE_REV]`: what a change to a spec does, relative to a git revision.

Computed from git, the spec and the compiler; no stage runs and no teacher is called:

1. the spec's semantic diff: both sides parsed and compared as data (comments and key order
   do not count), one row per changed, added or removed key path (`task.labels[3]`);
2. the stages that rebuild, and why: a spec key the stage reads changed (each stage's READS;
   a key path equal to, under or above a listed key), a data file it depends on changed (git
   blob at BASE_REV, or the md5 in a `.dvc` file there, against the working tree), or a stage
   upstream rebuilds ("after `teacher`": then only if that stage's outputs change, since DVC
   skips a stage whose dependencies hash the same); plus whether dvc.yaml is stale;
3. the teacher calls and dollars the change costs: `spend_for(spec)` when `teacher` rebuilds
   (its answers, and its explanations in explain mode) or `seed` does (the generator's first
   round), net of the teacher cache on this machine; else none;
4. the metrics diff when both sides are built (`dvc metrics diff BASE_REV`).

    report = diff_report(Path("distill.yaml"), "origin/main")   # JSON-able
    print(render_markdown(report))                             # a pull-request comment
"""

from __future__ import annotations

from distillbuild.review.diff.markdown import render_markdown
from distillbuild.review.diff.report import diff_report
from distillbuild.review.diff.spec_changes import ABSENT, semantic_diff
from distillbuild.review.diff.stages import reads

__all__ = ["ABSENT", "diff_report", "reads", "render_markdown", "semantic_diff"]
