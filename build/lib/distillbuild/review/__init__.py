"""Reviewing a change to a spec: what `distill diff BASE_REV` reports for a pull request.

report = diff_report(Path("distill.yaml"), "origin/main")   # a JSON-able dict
print(render_markdown(report))                             # fit for a PR comment
"""

from distillbuild.review.diff import diff_report, render_markdown

__all__ = ["diff_report", "render_markdown"]
