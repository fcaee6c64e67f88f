"""`distill cache`: the repository's teacher cache."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import click

from distillbuild.cli.main import main
from distillbuild.spec.semantic import find_repo_root


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
