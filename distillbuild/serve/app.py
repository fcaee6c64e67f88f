"""Starting the server: `run` for `distill serve` (uvicorn in the foreground, SIGTERM and Ctrl-C
finishing the requests in flight before it stops), `serve` for a server in this process (tests,
benchmarks). Several workers, for a student that allows them, are uvicorn's worker processes,
each loading the model, their metrics added up through PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator

from distillbuild.console import log
from distillbuild.errors import StageError
from distillbuild.serve.service import ServeOptions, Service, check_exposure
from distillbuild.spec import Spec, load_spec

OPTIONS_ENV = "DISTILL_SERVE_OPTIONS"  # how worker processes learn what to serve


def _settings(options: ServeOptions) -> dict:
    """uvicorn's settings, the same for one process and for several workers."""
    return {
        "host": options.host,
        "port": options.port,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": int(options.grace_s),
        "timeout_keep_alive": 75,  # longer than a load balancer's idle timeout (60 s on the common ones)
        "backlog": 4096,
    }


def run(spec: Spec, options: ServeOptions) -> None:
    """Serve until SIGTERM or Ctrl-C; requests in flight are answered first."""
    import uvicorn

    check_exposure(options)
    if options.workers > 1:
        if spec.student.kind == "causal-lm":
            raise StageError("--workers: a causal student is one model behind one engine; serve it with one worker")
        os.environ[OPTIONS_ENV] = json.dumps(
            {"spec": str(spec.path), **{k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()}}
        )
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="distill-serve-metrics-"))
        uvicorn.run(
            "distillbuild.serve.app:app_from_environment", factory=True, workers=options.workers, **_settings(options)
        )
        return
    from distillbuild.serve.asgi import create_app

    service = Service(spec, options)
    server = uvicorn.Server(uvicorn.Config(create_app(service), **_settings(options)))
    service.on_failed = lambda: setattr(server, "should_exit", True)
    _bind_or_fail(options)
    with _signals_end_cleanly():
        server.run()
    if service.failed:
        raise StageError(service.failed)
    if service.cut:
        log(f"serve: stopped; {service.cut} request(s) went unanswered (their clients left, or the grace ran out)")
    else:
        log("serve: stopped; every request in flight was answered")


class _Stopped(Exception):
    pass


@contextmanager
def _signals_end_cleanly() -> Iterator[None]:
    """uvicorn shuts down gracefully on SIGTERM or Ctrl-C, then raises the signal again for the
    handler it found: this one, so a stop that was asked for and done ends with exit code 0."""

    def stopped(signum, frame):
        raise _Stopped(signum)

    previous = {sig: signal.signal(sig, stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def app_from_environment():
    """A worker's app, from what `run` put in the environment."""
    from distillbuild.serve.asgi import create_app

    raw = json.loads(os.environ[OPTIONS_ENV])
    spec = load_spec(Path(raw.pop("spec")), ("*",))
    for key in ("shadow", "shadow_log"):
        if raw.get(key) is not None:
            raw[key] = Path(raw[key])
    raw["api_keys"] = tuple(raw["api_keys"])
    return create_app(Service(spec, ServeOptions(**raw)))


def _bind_or_fail(options: ServeOptions) -> None:
    """A clear message for a port in use, before uvicorn logs its own and exits 1."""
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((options.host, options.port))
        except OSError as exc:
            raise StageError(f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}") from None


@dataclass
class Running:
    """A server in this process: its address and what it serves."""

    base_url: str
    service: Service


@contextmanager
def serve(spec: Spec, port: int = 0, route: bool = True, **options) -> Iterator[Running]:
    """The server for `spec` on 127.0.0.1:port (0: a free one) in a background thread, ready
    (the model loaded) when the block starts, stopped as `distill serve` stops when it ends."""
    import uvicorn

    from distillbuild.serve.asgi import create_app

    opts = replace(ServeOptions(), port=port, route=route, **options)
    check_exposure(opts)
    service = Service(spec, opts)
    server = uvicorn.Server(uvicorn.Config(create_app(service), **_settings(opts)))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
    thread = threading.Thread(target=server.run, name="distill-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 600
    while not service.ready:
        if service.failed:
            server.should_exit = True
            thread.join(30)
            raise StageError(service.failed)
        if not thread.is_alive():
            raise StageError(f"cannot listen on 127.0.0.1:{port}")
        if time.monotonic() > deadline:
            raise StageError("the server did not load its model in 600 s")
        time.sleep(0.02)
    while not server.started:
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(f"http://127.0.0.1:{bound}/v1", service)
    finally:
        server.should_exit = True
        thread.join(opts.grace_s + 30)
