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
    loaded = load_or_exit(spec)
    with runtime_errors("serve"):
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
