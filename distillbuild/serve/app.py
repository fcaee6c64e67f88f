"""The served student, from a spec: its model, the route's threshold and, when the spec routes,
the teacher's endpoint opened as the teacher stage opens it (stand-in, llama.cpp or a real API
with the key from the environment)."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Iterator

from distillbuild.console import log
from distillbuild.endpoints.open import open_endpoint
from distillbuild.errors import StageError
from distillbuild.pipeline.stages.teacher import teacher_settings
from distillbuild.serve.http import Server
from distillbuild.serve.router import Router, route_threshold
from distillbuild.serve.students import open_student
from distillbuild.spec import Spec


@contextmanager
def serve(spec: Spec, port: int = 0, route: bool = True) -> Iterator[Server]:
    """The endpoint for `spec`'s student on 127.0.0.1:port until the block ends (route=False: the
    student answers everything, as when another pipeline asks it as its teacher)."""
    threshold = route_threshold(spec) if route else None
    with ExitStack() as stack:
        student, runtime = open_student(spec, stack)
        settings = None
        if threshold is not None:
            settings, _cache = stack.enter_context(
                open_endpoint(
                    spec.teacher,
                    spec.dir,
                    spec.repo_root,
                    kind="teacher",
                    where="teacher",
                    settings_for=teacher_settings(spec),
                    labels=spec.task.labels or [],
                )
            )
        name = f"{spec.registry_name}-student"
        router = Router(spec, student, name, threshold, settings)
        health = {
            "student": name,
            "runtime": runtime,
            "labels": list(spec.task.labels),
            "threshold": None if threshold in (None, float("inf")) else threshold,
            "teacher": settings.model if settings else None,
        }
        try:
            server = Server(router, health, port)
        except OSError as exc:
            raise StageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        stack.callback(server.close)
        log(
            f"serve: {name} ({runtime}) on {server.base_url}"
            + (f"; below confidence {threshold:.4f} the teacher {settings.model} answers" if settings else "")
        )
        yield server
