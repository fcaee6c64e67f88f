"""Commands that read a build: summary, report, diff, reproduce, promote."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from distillbuild.cli.main import SPEC_ARG, load_or_exit, main, runtime_errors
from distillbuild.spec.semantic import find_repo_root


@main.command()
@SPEC_ARG
def summary(spec: Path) -> None:
    """One screen on the last build of SPEC: teacher calls, rows kept, accuracy, retention, verdict."""
    from distillbuild.reports.summary import summary_text

    loaded = load_or_exit(spec)
    click.echo(summary_text(loaded))


@main.command()
@SPEC_ARG
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the page (default: build/report.html beside the spec).",
)
def report(spec: Path, output: Path | None) -> None:
    """The last build of SPEC as one self-contained HTML page: summary, teacher, filter with
    rejected examples, class balance, training curves, confusion matrix, per-class F1, latency,
    gates, route curve, export, lineage and model card. Inline SVG; the page makes no request."""
    from distillbuild.reports.page import write

    loaded = load_or_exit(spec)
    target = write(loaded, output)
    click.echo(f"wrote {target} ({target.stat().st_size / 1024:.0f} KB)")


@main.command()
@click.argument("base_rev", required=False, default="HEAD")
@click.option(
    "--spec", "spec_path", default="distill.yaml", show_default=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of Markdown.")
def diff(base_rev: str, spec_path: Path, as_json: bool) -> None:
    """What the change to SPEC since BASE_REV (default HEAD) does, as Markdown for a pull request:
    the spec's semantic diff, the stages that rebuild and why, new teacher calls and dollars
    (net of the cache), and the metrics diff when both sides are built."""
    from distillbuild.review.diff import diff_report, render_markdown

    load_or_exit(spec_path)  # a broken spec is refused like everywhere else: exit 2, file and line
    with runtime_errors("distill diff"):
        report = diff_report(spec_path, base_rev)
    click.echo(json.dumps(report, indent=2) if as_json else render_markdown(report))


@main.command()
@click.argument("rev")
@click.option(
    "--spec", "spec_path", default="distill.yaml", show_default=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of Markdown.")
@click.option(
    "--min-agreement",
    type=click.FloatRange(0, 1),
    default=0.995,
    show_default=True,
    help="Share of held-out predictions that must match the record for EQUIVALENT.",
)
def reproduce(rev: str, spec_path: Path, as_json: bool, min_agreement: float) -> None:
    """Rebuild REV (a commit or a NAME@vX.Y.Z tag) in a temporary worktree and compare it with its
    record: exit 0 IDENTICAL (every hash matches), 4 EQUIVALENT (other bytes from the same inputs,
    predictions and gated metrics within tolerance), 1 DIFFERENT; each naming the first stage whose
    outputs differ and why."""
    from distillbuild.review.equivalence import EXIT_CODES
    from distillbuild.review.reproduce import render
    from distillbuild.review.reproduce import reproduce as rebuild

    root = find_repo_root(spec_path.absolute().parent)
    spec_rel = spec_path.absolute().relative_to(root).as_posix()
    with runtime_errors("distill reproduce"):
        report = rebuild(root, spec_rel, rev, log=lambda m: click.echo(m, err=True), min_agreement=min_agreement)
    click.echo(json.dumps(report, indent=2) if as_json else render(report))
    sys.exit(EXIT_CODES[report["verdict"]])


@main.command()
@SPEC_ARG
@click.option("--version", help="The version to tag, X.Y.Z (default: the next one).")
@click.option(
    "--bump",
    type=click.Choice(["major", "minor", "patch"]),
    default="minor",
    show_default=True,
    help="Which part of the last version to raise.",
)
def promote(spec: Path, version: str | None, bump: str) -> None:
    """Tag the last build of SPEC as NAME@vX.Y.Z, if its gates passed and its record is committed."""
    from distillbuild.review.promote import promote as promote_build

    loaded = load_or_exit(spec)
    with runtime_errors("distill promote"):
        tag = promote_build(loaded, version, bump)
    click.echo(f"tagged {tag}; publish it with `git push origin {tag}`")
