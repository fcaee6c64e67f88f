"""Commands that check, compile and run a build: validate, compile, stage, estimate."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

import click

from distillbuild.cli.main import SPEC_ARG, load_or_exit, main, runtime_errors
from distillbuild.io import write_text


@main.command()
@SPEC_ARG
def validate(spec: Path) -> None:
    """Check SPEC (default distill.yaml): exit 0, or 2 listing every error as FILE:LINE: key: message."""
    loaded = load_or_exit(spec)
    click.echo(
        f"{spec}: ok ({loaded.name}, {loaded.task.type}, teacher {loaded.teacher.provider}:{loaded.teacher.model})"
    )


@main.command("compile")
@SPEC_ARG
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the dvc.yaml next to SPEC is stale.")
def compile_cmd(spec: Path, check: bool) -> None:
    """Compile SPEC into the dvc.yaml beside it (byte-identical on every rerun)."""
    from distillbuild.pipeline.compile import dvc_yaml_path, pipeline, render

    loaded = load_or_exit(spec)
    text = render(loaded)
    target = dvc_yaml_path(loaded)
    current = target.read_text(encoding="utf-8") if target.exists() else None
    if check:
        if current == text:
            click.echo(f"{target.name}: up to date with {spec}")
            return
        click.echo(f"{target.name} is stale: run `distill compile {spec}` and commit it", err=True)
        diff = difflib.unified_diff(
            (current or "").splitlines(), text.splitlines(), "committed", "compiled", lineterm="", n=1
        )
        for line in list(diff)[:40]:
            click.echo(line, err=True)
        sys.exit(1)
    if current == text:
        click.echo(f"{target.name}: unchanged")
        return
    write_text(target, text)
    click.echo(f"wrote {target.name} ({len(pipeline(loaded)['stages'])} stages)")


def _stage_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from distillbuild.pipeline import stage_list

    if value not in stage_list.names():
        raise click.BadParameter(f"{value!r} is not a stage; the stages are {', '.join(stage_list.names())}")
    return value


@main.command()
@click.argument("name", callback=_stage_name)
@click.option(
    "--spec", "spec_path", default="distill.yaml", show_default=True, type=click.Path(dir_okay=False, path_type=Path)
)
def stage(name: str, spec_path: Path) -> None:
    """Run one pipeline stage, NAME (dvc.yaml calls this; you rarely need to)."""
    from distillbuild.pipeline.runner import run_stage

    loaded = load_or_exit(spec_path)
    with runtime_errors(f"distill stage {name}"):
        try:
            code = run_stage(name, loaded)
        except KeyboardInterrupt:
            click.echo(
                f"distill stage {name}: interrupted; rerun to resume (cached teacher answers are kept)", err=True
            )
            sys.exit(130)
    sys.exit(code)


@main.command()
@SPEC_ARG
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--canary",
    is_flag=True,
    help="Also ask the teacher the canary's first prompts (teacher.canary) and check their answers: "
    "exit 3 when the teacher does not do the task. Those answers are cached for the run.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="With --canary: also show the share of the canary's answers this min_confidence would keep.",
)
def estimate(spec: Path, as_json: bool, canary: bool, threshold: float | None) -> None:
    """Calls, tokens and dollars the teacher stage (and a seed stage) will spend, net of the cache."""
    from distillbuild import layout
    from distillbuild.curate.confidence import canary_confidence
    from distillbuild.pipeline.spend import spend_for
    from distillbuild.pipeline.stages import seed as seed_stage
    from distillbuild.pipeline.stages.teacher import input_checks_report, load_inputs, run_canary

    loaded = load_or_exit(spec)
    canary_rows = None
    with runtime_errors("distill estimate"):
        spend = spend_for(loaded)
        checked = input_checks_report(load_inputs(loaded)[1])  # counted apart: never asked, never paid
        if canary:
            canary_rows = run_canary(loaded)
    est, seeding, explaining = spend.answers, spend.seed, spend.explanations
    generated = loaded.seed is not None and loaded.resolve(layout.SEED_INPUTS).exists()
    if as_json:
        body = spend.as_dict()
        body["input_checks"] = checked
        if canary_rows is not None and loaded.task.labels:
            body["canary_confidence"] = canary_confidence(canary_rows, loaded.task.labels, loaded.filters, threshold)
        if seeding is not None:
            body["seed"].update(max_rounds=loaded.seed.max_rounds, generated_inputs_counted=generated)
        click.echo(json.dumps(body, indent=2))
        return
    if seeding is not None:
        _echo_estimate(f"seed generator {seeding.model} (round 1)", seeding)
        click.echo(f"  later rounds       at most {loaded.seed.max_rounds - 1} more, asking only for what was dropped")
    _echo_estimate(f"teacher {est.model}", est)
    if checked["not_asked"]:
        reasons = ", ".join(f"{k} {v:,}" for k, v in checked["by_reason"].items())
        click.echo(f"  not asked          {checked['not_asked']:,} of {checked['inputs']:,} inputs ({reasons})")
    if explaining is not None:
        _echo_estimate("  then its explanations (at most one per training input)", explaining)
    if seeding is not None and not generated:
        click.echo(
            "  (the seed stage has not run: the teacher will also answer the inputs it keeps, "
            f"up to {sum(seed_stage.quotas(loaded.task, loaded.seed).values()):,} more requests)"
        )
    if loaded.teacher.provider == "simulated":
        click.echo(
            "  (the teacher is the simulated stand-in: nothing is billed; prices show what the same calls would cost)"
        )
    if canary_rows is not None and loaded.task.labels:
        _echo_canary_confidence(loaded, canary_rows, threshold)


def _echo_canary_confidence(loaded, rows: list[dict], threshold: float | None) -> None:
    from distillbuild.curate.confidence import canary_confidence, fixed_threshold

    d = canary_confidence(rows, loaded.task.labels, loaded.filters, threshold)
    spec_threshold = fixed_threshold(loaded.filters)
    if not d["answers"]:
        click.echo("canary: no answer carries a confidence (are logprobs on? teacher.top_logprobs)")
        return
    click.echo(
        f"canary confidence ({d['measure']}, {d['answers']} answers): min {d['min']}, p25 {d['p25']}, "
        f"median {d['median']}, p75 {d['p75']}, max {d['max']}"
    )
    click.echo(
        "  a threshold of "
        + ", ".join(f"{t} keeps {share:.0%}" for t, share in d["kept_share"].items())
        + (f" (filters.min_confidence is {spec_threshold})" if spec_threshold is not None else "")
    )


def _echo_estimate(what: str, est) -> None:
    money = lambda v: "n/a (no price)" if v is None else f"${v:,.4f}"  # noqa: E731
    click.echo(
        f"{what}: {est.requests:,} requests, {est.unique:,} unique, "
        f"{est.cached:,} already cached, {est.to_call:,} to call"
    )
    click.echo(f"  prompt tokens      {est.prompt_tokens:,}  [{est.token_method}]")
    click.echo(
        f"  completion tokens  ~{est.completion_tokens_expected:,} expected, at most {est.completion_tokens_max:,}"
    )
    click.echo(f"  cost               ~{money(est.cost_usd_expected)} expected, at most {money(est.cost_usd_max)}")
    if est.budget_usd is not None:
        fits = est.cost_usd_max is not None and est.cost_usd_max <= est.budget_usd
        click.echo(
            f"  budget             ${est.budget_usd:,.2f} ({'fits' if fits else 'the run may stop at the budget'})"
        )
