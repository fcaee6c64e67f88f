"""The `distill` command: thin, parses arguments and delegates.

Exit codes: 0 ok, 1 a gate failed (or `compile --check` found dvc.yaml stale),
2 bad spec or usage, 3 a runtime failure.

Each command imports what it runs inside its own function: `distill validate` loads the spec
modules alone and answers in about 0.15 s, while `distill stage` brings the stages and their
engines.
"""

from __future__ import annotations

import datetime
import difflib
import json
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from distillbuild.errors import EXIT_BAD_SPEC, EXIT_RUNTIME, SpecError, StageError
from distillbuild.io import write_text
from distillbuild.spec import load_spec
from distillbuild.spec.semantic import find_repo_root

SPEC_ARG = click.argument(
    "spec", required=False, default="distill.yaml", type=click.Path(dir_okay=False, path_type=Path)
)


def _load(spec_path: Path, to_be_written: tuple[str, ...] = ()):
    try:
        return load_spec(spec_path, to_be_written)
    except SpecError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        n = len(exc.issues)
        click.echo(f"{n} error{'s' if n != 1 else ''} in {exc.issues[0].file}", err=True)
        sys.exit(EXIT_BAD_SPEC)
    except Exception as exc:  # noqa: BLE001 - a spec must never produce a traceback
        click.echo(
            f"{spec_path}:1: (root): could not be validated ({type(exc).__name__}: {str(exc)[:200]}); "
            "this is a bug in distillbuild, please report it with the spec",
            err=True,
        )
        sys.exit(EXIT_BAD_SPEC)


@contextmanager
def _runtime_errors(command: str) -> Iterator[None]:
    """A runtime failure (teacher, budget, trainer, git) as one line on stderr and its exit code."""
    try:
        yield
    except StageError as exc:
        click.echo(f"{command}: {exc}", err=True)
        sys.exit(exc.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="distillbuild")
def main() -> None:
    """distillbuild: build distilled models from one validated spec, distill.yaml.

    Edit distill.yaml, then `distill compile` and `dvc repro`.
    """


@main.command()
@SPEC_ARG
def validate(spec: Path) -> None:
    """Check SPEC (default distill.yaml): exit 0, or 2 listing every error as FILE:LINE: key: message."""
    loaded = _load(spec)
    click.echo(
        f"{spec}: ok ({loaded.name}, {loaded.task.type}, teacher {loaded.teacher.provider}:{loaded.teacher.model})"
    )


def _comma_list(value: str) -> tuple[str, ...]:
    """`a, b,a` -> ("a", "b"): stripped, empty items and repeats dropped, order kept."""
    return tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))


def _labels(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    labels = _comma_list(value)
    if len(labels) < 2:
        raise click.BadParameter("give at least two labels, comma-separated (e.g. spam,legit)")
    return labels


def _fields(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    fields = _comma_list(value)
    if not fields or not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", f) for f in fields):
        raise click.BadParameter("field names, comma-separated: letters, digits and underscores (e.g. name,order_id)")
    return fields


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="The model's name (lower-case letters, digits, dashes). Default: the directory's.")
@click.option(
    "--task",
    "task_type",
    type=click.Choice(["classification", "extraction"]),
    help="classification (one label per input, the default) or extraction (a JSON object per input).",
)
@click.option(
    "--labels",
    callback=_labels,
    help="Classification: the labels, comma-separated. Default: four "
    "ticket categories, with a sample of real-looking tickets to build from.",
)
@click.option(
    "--fields",
    callback=_fields,
    help="Extraction: the output schema's fields, comma-separated (strings, "
    "null when absent). Default: customer_name,order_id.",
)
@click.option("--instruction", help="The task's instruction (the teacher's system prompt).")
@click.option(
    "--teacher",
    type=click.Choice(["simulated", "openai", "llamacpp"]),
    help="simulated (offline stand-in, the default), openai (any OpenAI-compatible endpoint), llamacpp (a local GGUF).",
)
@click.option("--model", "teacher_model", help="The teacher's model name (openai). Default: gpt-4o-mini.")
@click.option("--base-url", help="The teacher's endpoint (openai). Default: OpenAI's.")
@click.option("--gguf", help="The teacher's GGUF file (llamacpp): a path, or package:NAME/FILE.")
@click.option(
    "--student",
    type=click.Choice(["encoder", "causal"]),
    help="encoder (MiniLM classifier on CPU, "
    "the default) or causal (a causal LM fine-tuned by Axolotl with QLoRA, on a GPU).",
)
@click.option(
    "--base-model", help="The student's base model. Default: MiniLM (encoder), Llama-3.2-1B-Instruct (causal)."
)
@click.option("--no-input", is_flag=True, help="Ask nothing: flags and defaults only (always so without a terminal).")
def init(
    directory: Path,
    name: str | None,
    task_type: str | None,
    labels: tuple[str, ...] | None,
    fields: tuple[str, ...] | None,
    instruction: str | None,
    teacher: str | None,
    teacher_model: str | None,
    base_url: str | None,
    gguf: str | None,
    student: str | None,
    base_model: str | None,
    no_input: bool,
) -> None:
    """Start a distillation project in DIRECTORY: distill.yaml (commented), data/ with sample rows,
    .gitignore, a README, git and DVC initialised, dvc.yaml compiled. `dvc repro` then builds it.
    Writes over nothing."""
    from distillbuild.pipeline.compile import dvc_yaml_path, render
    from distillbuild.scaffold.project import EXTRACTION_INSTRUCTION, SAMPLE_INSTRUCTION, Choices, create

    ask = not no_input and sys.stdin.isatty()
    default_name = re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-") or "my-model"
    if ask:
        name = name or click.prompt("Model name", default=default_name)
        task_type = task_type or click.prompt(
            "Task", type=click.Choice(["classification", "extraction"]), default="classification"
        )
        if task_type == "extraction" and fields is None:
            typed = click.prompt("Fields, comma-separated", default="customer_name,order_id")
            fields = _fields(click.get_current_context(), None, typed)
        if task_type == "classification" and labels is None:
            typed = click.prompt(
                "Labels, comma-separated (empty: the sample's four ticket categories)", default="", show_default=False
            )
            labels = _labels(click.get_current_context(), None, typed) if typed else None
        teacher = teacher or click.prompt(
            "Teacher", type=click.Choice(["simulated", "openai", "llamacpp"]), default="simulated"
        )
        if teacher == "llamacpp" and not gguf:
            gguf = click.prompt("GGUF file (a path, or package:NAME/FILE)")
        student = student or click.prompt("Student", type=click.Choice(["encoder", "causal"]), default="encoder")
    teacher, student = teacher or "simulated", student or "encoder"
    if teacher == "llamacpp" and not gguf:
        raise click.UsageError("--teacher llamacpp needs --gguf FILE")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name or default_name):
        raise click.BadParameter("lower-case letters, digits and dashes", param_hint="--name")
    task_type = task_type or "classification"
    if task_type == "extraction" and student == "causal":
        raise click.UsageError("distill init writes extraction projects with the encoder-extractor student")
    fields = fields or Choices.fields
    if task_type == "extraction" and instruction is None:
        instruction = EXTRACTION_INSTRUCTION.format(fields=", ".join(fields))
    if labels and instruction is None:
        instruction = (
            f"Classify the input into one of these categories: {', '.join(labels)}. Answer with the category name only."
        )
    choices = Choices(
        name=name or default_name,
        task=task_type,
        fields=fields,
        labels=labels or Choices.labels,
        instruction=instruction or SAMPLE_INSTRUCTION,
        teacher=teacher,
        model=teacher_model,
        base_url=base_url,
        gguf=gguf,
        student=student,
        base_model=base_model,
    )
    with _runtime_errors("init"):
        written = create(directory, choices, log=lambda line: click.echo(line, err=True))
        loaded = _load(directory / "distill.yaml")
        write_text(dvc_yaml_path(loaded), render(loaded))
    click.echo(f"{directory}: wrote {', '.join(written)}, dvc.yaml")
    click.echo(
        f"next: cd {directory} && dvc repro" + ("   (export OPENAI_API_KEY first)" if teacher == "openai" else "")
    )


@main.command("import-logs")
@click.argument("logs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--spec", "spec_path", default="distill.yaml", show_default=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The inputs file to write (default: the spec's data.inputs). Refused if it exists, unless --force.",
)
@click.option("--force", is_flag=True, help="Replace an existing inputs file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_logs_cmd(logs: tuple[Path, ...], spec_path: Path, output: Path | None, force: bool, as_json: bool) -> None:
    """Turn production chat logs (OpenAI-format JSON Lines: {"messages": [...]}, or stored
    completions) into the spec's inputs: the last user message of each record, with the spec's
    data.scrub rules masking e-mail addresses, phone numbers, card numbers and your own patterns
    before anything is written. Keep the raw logs outside the repository; only the masked inputs
    and a report of what was masked (beside them, *.scrub.json) are written."""
    from distillbuild.curate.log_import import import_logs
    from distillbuild.curate.scrub import Scrubber
    from distillbuild.io import write_json, write_jsonl

    loaded = _load(spec_path, to_be_written=("data.inputs",))  # the file this command writes
    target = output or loaded.resolve(loaded.data_files.inputs)
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists: pass --force to replace it")
    with _runtime_errors("import-logs"):
        try:
            rows, report = import_logs(logs, Scrubber.from_spec(loaded.data_files.scrub))
        except OSError as exc:
            raise StageError(f"cannot read the logs: {exc}") from None
    write_jsonl(target, rows)
    report_path = target.with_name(target.name.removesuffix(".jsonl") + ".scrub.json")
    write_json(report_path, report)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    masked = ", ".join(f"{k.lower()} {v}" for k, v in report["scrub"]["masked"].items())
    click.echo(
        f"{target}: {report['inputs']} inputs from {report['records']} records; masked {masked} "
        f"in {report['scrub']['rows_changed']} rows; skipped {report['skipped'] or 'none'} "
        f"(report: {report_path.name})"
    )


@main.command()
@click.argument("new_inputs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--spec", "spec_path", default="distill.yaml", show_default=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def drift(new_inputs: Path, spec_path: Path, as_json: bool) -> None:
    """Compare NEW_INPUTS (JSON Lines like data.inputs, e.g. from `distill import-logs`) with the
    spec's training inputs: the share of new inputs out of distribution (embedding distance) and,
    with a built encoder-classifier student, the shift of its label mix. Exit 1 when either
    passes the spec's `drift` thresholds: a re-distillation is due."""
    import random

    from distillbuild import layout
    from distillbuild.evaluate.drift import drift_report, minilm_embedder
    from distillbuild.spec.inputs import read_rows

    loaded = _load(spec_path)
    settings, template = loaded.drift, loaded.task.input_template

    def texts(path: Path) -> list[str]:
        rows = [r["text"] for r in read_rows(path, template, need_label=False)]
        return random.Random(0).sample(rows, settings.sample) if len(rows) > settings.sample else rows

    predict = None
    if loaded.student.kind == "encoder-classifier" and (loaded.dir / layout.MODEL_DIR).is_dir():
        from distillbuild.train.encoder import EncoderClassifier  # lazy: imports torch

        predict = EncoderClassifier.load(loaded.dir / layout.MODEL_DIR, threads=loaded.evaluation.threads).predict
    with _runtime_errors("drift"):
        try:
            report = drift_report(
                texts(loaded.resolve(loaded.data_files.inputs)),
                texts(new_inputs),
                minilm_embedder(loaded.evaluation.threads),
                settings.max_ood_share,
                settings.max_label_shift,
                predict,
            )
        except ValueError as exc:
            raise StageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        shift = (
            "not measured (no encoder-classifier student built)"
            if report["label_shift"] is None
            else f"{report['label_shift']:.3f} (max {report['max_label_shift']})"
        )
        click.echo(
            f"drift: {report['new_inputs']} new inputs against {report['training_inputs']} training inputs; "
            f"out of distribution {report['ood_share']:.1%} (about {report['ood_share_expected_without_drift']:.0%} "
            f"without drift, max {report['max_ood_share']:.0%}); label shift {shift}"
        )
        click.echo(
            "drift: RE-DISTIL: " + "; ".join(report["reasons"])
            if report["drift"]
            else "drift: none beyond the thresholds"
        )
    sys.exit(1 if report["drift"] else 0)


@main.command("compile")
@SPEC_ARG
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the dvc.yaml next to SPEC is stale.")
def compile_cmd(spec: Path, check: bool) -> None:
    """Compile SPEC into the dvc.yaml beside it (byte-identical on every rerun)."""
    from distillbuild.pipeline.compile import dvc_yaml_path, pipeline, render

    loaded = _load(spec)
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

    loaded = _load(spec_path)
    with _runtime_errors(f"distill stage {name}"):
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
def summary(spec: Path) -> None:
    """One screen on the last build of SPEC: teacher calls, rows kept, accuracy, retention, verdict."""
    from distillbuild.reports.summary import summary_text

    loaded = _load(spec)
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

    loaded = _load(spec)
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

    _load(spec_path)  # a broken spec is refused like everywhere else: exit 2, file and line
    with _runtime_errors("distill diff"):
        report = diff_report(spec_path, base_rev)
    click.echo(json.dumps(report, indent=2) if as_json else render_markdown(report))


@main.command()
@click.argument("rev")
@click.option(
    "--spec", "spec_path", default="distill.yaml", show_default=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def reproduce(rev: str, spec_path: Path, as_json: bool) -> None:
    """Rebuild REV (a commit or a NAME@vX.Y.Z tag) in a temporary worktree and compare the rebuilt
    model, data and metrics with its record: exit 0 when identical, 1 listing what differs."""
    from distillbuild.review.reproduce import render
    from distillbuild.review.reproduce import reproduce as rebuild

    root = find_repo_root(spec_path.absolute().parent)
    spec_rel = spec_path.absolute().relative_to(root).as_posix()
    with _runtime_errors("distill reproduce"):
        report = rebuild(root, spec_rel, rev, log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps(report, indent=2) if as_json else render(report))
    sys.exit(0 if report["identical"] else 1)


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

    loaded = _load(spec)
    with _runtime_errors("distill promote"):
        tag = promote_build(loaded, version, bump)
    click.echo(f"tagged {tag}; publish it with `git push origin {tag}`")


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
    from distillbuild.pipeline.spend import spend_for
    from distillbuild.pipeline.stages import seed as seed_stage
    from distillbuild.pipeline.stages.teacher import run_canary

    loaded = _load(spec)
    canary_rows = None
    with _runtime_errors("distill estimate"):
        spend = spend_for(loaded)
        if canary:
            canary_rows = run_canary(loaded)
    est, seeding, explaining = spend.answers, spend.seed, spend.explanations
    generated = loaded.seed is not None and loaded.resolve(layout.SEED_INPUTS).exists()
    if as_json:
        body = spend.as_dict()
        if canary_rows is not None and loaded.task.labels:
            body["canary_confidence"] = _canary_confidence(loaded, canary_rows, threshold)
        if seeding is not None:
            body["seed"].update(max_rounds=loaded.seed.max_rounds, generated_inputs_counted=generated)
        click.echo(json.dumps(body, indent=2))
        return
    if seeding is not None:
        _echo_estimate(f"seed generator {seeding.model} (round 1)", seeding)
        click.echo(f"  later rounds       at most {loaded.seed.max_rounds - 1} more, asking only for what was dropped")
    _echo_estimate(f"teacher {est.model}", est)
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


def _canary_confidence(loaded, rows: list[dict], threshold: float | None) -> dict:
    """The canary's answers as the filter will read them: their confidence, and what a threshold keeps."""
    from distillbuild.curate.confidence import distribution

    f = loaded.filters
    thresholds = sorted({t for t in (threshold, _spec_threshold(loaded), 0.5, 0.7, 0.9) if t is not None})
    return distribution(rows, loaded.task.labels, f.confidence, f.min_label_mass, thresholds)


def _spec_threshold(loaded) -> float | None:
    t = loaded.filters.min_confidence
    return t if isinstance(t, (int, float)) and t > 0 else None


def _echo_canary_confidence(loaded, rows: list[dict], threshold: float | None) -> None:
    d, spec_threshold = _canary_confidence(loaded, rows, threshold), _spec_threshold(loaded)
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


@main.group()
def cache() -> None:
    """The repository's teacher cache (.distill/cache, or $DISTILL_CACHE_DIR)."""


def _open_cache():
    from distillbuild.llm.cache import TeacherCache

    return TeacherCache.for_repo(find_repo_root(Path.cwd()))


@cache.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cache_stats(as_json: bool) -> None:
    """Entries, size and age of the cache, by model and endpoint."""
    store = _open_cache()
    stats = store.stats()
    store.close()
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    when = lambda t: datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else "-"  # noqa: E731
    click.echo(
        f"{stats['path']}: {stats['entries']:,} answers, {stats['bytes'] / 1e6:.1f} MB, "
        f"{when(stats['first'])} .. {when(stats['last'])}"
    )
    for model, n in stats["by_model"].items():
        click.echo(f"  model {model}: {n:,}")
    for endpoint, n in stats["by_endpoint"].items():
        click.echo(f"  endpoint {endpoint}: {n:,}")


@cache.command("prune")
@click.option("--older-than", "older_than_days", type=click.FloatRange(min=0), help="Only entries older than DAYS.")
@click.option("--model", help="Only entries of this model.")
@click.option("--endpoint", help="Only entries of this endpoint.")
@click.option("--all", "everything", is_flag=True, help="Every entry (needed when no other condition is given).")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def cache_prune(
    older_than_days: float | None, model: str | None, endpoint: str | None, everything: bool, dry_run: bool
) -> None:
    """Delete cached answers. Deleted answers are paid for again when next needed."""
    if older_than_days is None and model is None and endpoint is None and not everything:
        raise click.UsageError("say what to prune: --older-than DAYS, --model, --endpoint, or --all")
    store = _open_cache()
    n = store.prune(older_than_days * 86400 if older_than_days is not None else None, model, endpoint, dry_run)
    store.close()
    click.echo(f"{'would delete' if dry_run else 'deleted'} {n:,} cached answers")


def _fault(ctx, param, values):
    from distillbuild.endpoints.standin.server import FAULT_KINDS

    faults = {}
    for value in values:
        kind, _, p = value.partition("=")
        try:
            prob = float(p)
        except ValueError:
            prob = -1.0
        if kind not in FAULT_KINDS or not 0 <= prob <= 1:
            raise click.BadParameter(
                f"{value!r}: expected KIND=P with KIND one of {', '.join(FAULT_KINDS)} and 0 <= P <= 1"
            )
        faults[kind] = prob
    return faults


@main.command()
@SPEC_ARG
@click.option("--port", default=8000, show_default=True, help="Port on 127.0.0.1 (0: a free one).")
@click.option(
    "--no-route",
    is_flag=True,
    help="The student answers everything, even with a `route` section (how a pipeline teacher serves it).",
)
def serve(spec: Path, port: int, no_route: bool) -> None:
    """Serve SPEC's built student as an OpenAI-compatible endpoint on 127.0.0.1 (the ONNX export when
    there is one); with a `route` section, requests below the route's threshold go to the teacher.

    POST /v1/chat/completions, GET /health, GET /metrics, GET /v1/models. Ctrl-C stops.
    """
    import signal
    import threading

    from distillbuild.serve.app import serve as serving  # lazy: loads the student's runtime

    def stop(*_: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (a teacher stage closing its pipeline teacher) unwinds like Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    loaded = _load(spec)
    with _runtime_errors("serve"):
        try:
            with serving(loaded, port, route=not no_route):
                threading.Event().wait()
        except KeyboardInterrupt:
            pass  # the with block has closed the server and whatever it started (llama.cpp)


@main.command("serve-teacher")
@SPEC_ARG
@click.option("--port", default=8765, show_default=True, help="Port on 127.0.0.1.")
@click.option("--latency-ms", type=click.FloatRange(min=0), help="Mean latency (default: the spec's).")
@click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute before answering 429.")
@click.option("--tpm", type=click.IntRange(min=1), help="Tokens per minute before answering 429.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    callback=_fault,
    metavar="KIND=P",
    help="Inject a fault with probability P: "
    "rate_limit, server_error, timeout, connection_reset, malformed, truncated.",
)
@click.option("--api-key-env", help="Require the bearer token held in this environment variable.")
def serve_teacher(
    spec: Path,
    port: int,
    latency_ms: float | None,
    rpm: int | None,
    tpm: int | None,
    faults: dict,
    api_key_env: str | None,
) -> None:
    """Serve SPEC's simulated teacher as an OpenAI-compatible endpoint on 127.0.0.1.

    Chat Completions with logprobs and usage, the Files and Batches endpoints, rate limits
    answered with real 429s, and injectable faults: for testing clients, this one included.
    """
    from distillbuild.endpoints.standin import start_endpoint

    loaded = _load(spec)
    if loaded.teacher.provider != "simulated":
        click.echo("serve-teacher needs teacher.provider: simulated", err=True)
        sys.exit(EXIT_BAD_SPEC)
    overrides: dict = {}
    if latency_ms is not None:
        overrides["latency_ms"] = latency_ms
    if rpm or tpm:
        overrides["limits"] = {"rpm": rpm, "tpm": tpm}
    if faults:
        overrides["faults"] = faults
    if api_key_env:
        overrides["api_key"] = os.environ.get(api_key_env) or None
    try:
        server = start_endpoint(loaded.teacher, loaded.dir, labels=loaded.task.labels or [], port=port, **overrides)
    except OSError as exc:
        click.echo(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}", err=True)
        sys.exit(EXIT_RUNTIME)
    click.echo(f"simulated teacher (a stand-in, not a model) on {server.base_url}; Ctrl-C stops")
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
