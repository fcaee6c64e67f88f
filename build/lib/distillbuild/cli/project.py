"""`distill init`: a new project."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from distillbuild.cli.main import load_or_exit, main, runtime_errors
from distillbuild.io import write_text


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
    with runtime_errors("init"):
        written = create(directory, choices, log=lambda line: click.echo(line, err=True))
        loaded = load_or_exit(directory / "distill.yaml")
        write_text(dvc_yaml_path(loaded), render(loaded))
    click.echo(f"{directory}: wrote {', '.join(written)}, dvc.yaml")
    click.echo(
        f"next: cd {directory} && dvc repro" + ("   (export OPENAI_API_KEY first)" if teacher == "openai" else "")
    )
