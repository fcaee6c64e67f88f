"""Commands that serve: the student (serve) and the simulated teacher (serve-teacher)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from distillbuild.cli.main import SPEC_ARG, load_or_exit, main, runtime_errors
from distillbuild.errors import EXIT_BAD_SPEC, EXIT_RUNTIME


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
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one; needs a key)."
)
@click.option("--port", default=8000, show_default=True, help="Port (0: a free one).")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes, each with the model (encoder students only).",
)
@click.option(
    "--api-key-env",
    default="DISTILL_SERVE_API_KEYS",
    show_default=True,
    help="Environment variable holding the accepted keys, comma-separated.",
)
@click.option(
    "--api-key-file", type=click.Path(dir_okay=False, path_type=Path), help="File of accepted keys, one per line."
)
@click.option(
    "--no-route",
    is_flag=True,
    help="The student answers everything, even with a `route` section (how a pipeline teacher serves it).",
)
@click.option(
    "--shadow",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A candidate build's distill.yaml: it answers every request too, off the response path.",
)
@click.option(
    "--shadow-log",
    default="shadow.jsonl",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the shadow comparisons go (read by `distill shadow-report`).",
)
@click.option(
    "--canary",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Share of requests the --shadow candidate answers instead (by a hash of the input).",
)
def serve(
    spec: Path,
    host: str,
    port: int,
    workers: int,
    api_key_env: str,
    api_key_file: Path | None,
    no_route: bool,
    shadow: Path | None,
    shadow_log: Path,
    canary: float,
) -> None:
    """Serve SPEC's built student as an OpenAI-compatible endpoint (the ONNX export when there is
    one), under uvicorn; with a `route` section, requests below the route's threshold go to the teacher.

    POST /v1/chat/completions (plain or streamed), GET /v1/models, /health, /ready, /metrics
    (Prometheus). Keys: `Authorization: Bearer KEY`, accepted from --api-key-env and
    --api-key-file; none set, the server takes no key and listens on loopback only. SIGTERM or
    Ctrl-C answers the requests in flight, then stops.
    """
    from distillbuild.serve.app import run
    from distillbuild.serve.service import ServeOptions, read_keys

    # A server reads the model, not the data it was built from: an image holds no data file; what
    # the route reads (few-shot examples, a stand-in's answers) is checked when it is opened.
    loaded = load_or_exit(spec, to_be_written=("*",))
    with runtime_errors("serve"):
        options = ServeOptions(
            host=host,
            port=port,
            route=not no_route,
            api_keys=read_keys(api_key_env, api_key_file),
            shadow=shadow,
            shadow_log=shadow_log,
            canary=canary,
            workers=workers,
        )
        run(loaded, options)


@main.command("shadow-report")
@click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def shadow_report(log: Path, as_json: bool) -> None:
    """Summarise a `distill serve --shadow` log: the candidate's agreement with the current
    student, and each one's with the teacher on routed requests, with 95% intervals."""
    import json

    from distillbuild.serve.shadow import shadow_summary, shadow_text

    try:
        summary = shadow_summary(log)
    except (ValueError, KeyError) as exc:
        click.echo(f"shadow-report: {log}: {exc}", err=True)
        sys.exit(EXIT_RUNTIME)
    click.echo(json.dumps(summary, indent=2) if as_json else shadow_text(summary))


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

    loaded = load_or_exit(spec)
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
