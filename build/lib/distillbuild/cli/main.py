"""The `distill` group and what its commands share: the spec argument, loading a spec (exit 2
listing every issue), and runtime failures as one line and an exit code."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from distillbuild.errors import EXIT_BAD_SPEC, SpecError, StageError
from distillbuild.spec import load_spec

SPEC_ARG = click.argument(
    "spec", required=False, default="distill.yaml", type=click.Path(dir_okay=False, path_type=Path)
)


def load_or_exit(spec_path: Path, to_be_written: tuple[str, ...] = ()):
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
def runtime_errors(command: str) -> Iterator[None]:
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
