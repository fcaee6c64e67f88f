"""Commands on data coming in: import-logs, drift."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from distillbuild.cli.main import load_or_exit, main, runtime_errors
from distillbuild.errors import StageError


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
    from distillbuild.io import write_json, write_jsonl
    from distillbuild.privacy.scrubber import Scrubber

    loaded = load_or_exit(spec_path, to_be_written=("data.inputs",))  # the file this command writes
    target = output or loaded.resolve(loaded.data_files.inputs)
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists: pass --force to replace it")
    with runtime_errors("import-logs"):
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
    from distillbuild import layout
    from distillbuild.evaluate.drift import drift_text, spec_drift
    from distillbuild.privacy.scrubber import Scrubber

    loaded = load_or_exit(spec_path)
    model = loaded.dir / layout.MODEL_DIR
    scrub = loaded.data_files.scrub  # (its defaults when absent) the quoted examples masked unless it leaves drift out
    mask = Scrubber.from_spec(scrub).mask_many if "drift" in scrub.apply_to else None
    with runtime_errors("drift"):
        report = spec_drift(
            loaded.resolve(loaded.data_files.inputs),
            new_inputs,
            loaded.task.input_template,
            loaded.drift,
            loaded.evaluation.threads,
            model if loaded.student.kind == "encoder-classifier" and model.is_dir() else None,
            mask,
        )
    click.echo(json.dumps(report, indent=2) if as_json else drift_text(report))
    sys.exit(1 if report["drift"] else 0)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--spec",
    "spec_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=(
        "Use this spec's data.scrub (kinds, regions, patterns, NER). Default: distill.yaml when "
        "present, else every default kind."
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def scan(files: tuple[Path, ...], spec_path: Path | None, as_json: bool) -> None:
    """Report the personal or secret data FILES hold: by kind, with counts and line numbers,
    never a value. JSON Lines are read field by field, other files line by line. Exit 1 when
    anything is found: a pre-commit hook or a CI step that keeps such data out of the repository."""
    from distillbuild.privacy.scan import scan_file, scan_text
    from distillbuild.privacy.scrubber import Scrubber

    section = _scrub_section(spec_path)
    with runtime_errors("scan"):
        scrubber = Scrubber.from_spec(section)
        results = [scan_file(path, scrubber) for path in files]
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        click.echo(scan_text(results))
    sys.exit(1 if any(r.counts for r in results) else 0)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--spec",
    "spec_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use this spec's data.scrub. Default: distill.yaml when present, else every default kind.",
)
@click.option("--in-place", is_flag=True, help="Rewrite each file (else write FILE.scrubbed beside it).")
def scrub(files: tuple[Path, ...], spec_path: Path | None, in_place: bool) -> None:
    """Mask the personal and secret data FILES hold (what `distill scan` reports): JSON Lines
    field by field, keeping ids, labels and layout; other files line by line. Prints what was
    masked, by kind; never a value."""
    from distillbuild.io import write_text
    from distillbuild.privacy.scan import scrub_file
    from distillbuild.privacy.scrubber import Scrubber

    section = _scrub_section(spec_path)
    with runtime_errors("scrub"):
        for path in files:
            scrubber = Scrubber.from_spec(section)  # pseudonyms are numbered per file
            target = path if in_place else path.with_name(path.name + ".scrubbed")
            write_text(target, scrub_file(path, scrubber))
            masked = ", ".join(f"{k.lower()} {v}" for k, v in scrubber.report()["masked"].items() if v) or "nothing"
            click.echo(f"{path}: masked {masked} in {scrubber.rows_changed} text(s) -> {target}")


def _scrub_section(spec_path: Path | None):
    """data.scrub of --spec, else of ./distill.yaml when there is one, else None (every default
    kind). The spec's data files need not exist: only its rules are read."""
    if spec_path is None and not Path("distill.yaml").exists():
        return None
    return load_or_exit(spec_path or Path("distill.yaml"), ("*",)).data_files.scrub
