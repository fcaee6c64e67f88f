"""What a running server holds: the current build's router, the candidate's (for --shadow and
--canary), the capture file, the keys, the metrics and the admission count; loaded off the event
loop so /health answers while the model loads and /ready once it has.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from distillbuild.console import log
from distillbuild.endpoints.open import open_endpoint
from distillbuild.errors import EXIT_BAD_SPEC, StageError
from distillbuild.pipeline.privacy_doors import written_scrub
from distillbuild.pipeline.stages.teacher import teacher_settings
from distillbuild.privacy.scrubber import Scrubber
from distillbuild.serve.batcher import MicroBatcher
from distillbuild.serve.capture import Appender, open_capture
from distillbuild.serve.router import Router, route_threshold
from distillbuild.serve.shadow import Shadow
from distillbuild.serve.students import open_student
from distillbuild.serve.telemetry import Telemetry
from distillbuild.spec import Spec

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def route_mask(scrub) -> Callable[[str], str] | None:
    """data.scrub's masking for what the route sends the teacher: with a section (as written)
    naming `route`."""
    return Scrubber.from_spec(scrub) if scrub is not None and "route" in scrub.apply_to else None


def capture_mask(scrub) -> Callable[[str], str]:
    """data.scrub's masking for the capture file: on (every default kind without the section, whose
    defaults the typed spec holds) unless the section leaves the `capture` door out."""
    return Scrubber.from_spec(scrub) if "capture" in scrub.apply_to else (lambda text: text)


class ServeUsageError(StageError):
    """Options that cannot be served as given (exit 2, as click's own usage errors)."""

    exit_code = EXIT_BAD_SPEC


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 0
    route: bool = True  # False: the student answers everything (a pipeline teacher)
    api_keys: tuple[str, ...] = ()  # none: no authentication (loopback only)
    shadow: Path | None = None  # a candidate build's distill.yaml
    shadow_log: Path = Path("shadow.jsonl")
    canary: float = 0.0  # share of requests the candidate answers
    workers: int = 1
    grace_s: float = 30.0  # how long a stopping server finishes what is in flight


def check_exposure(options: ServeOptions) -> None:
    """An address other than loopback needs a key: a model on the network without one is open to all."""
    if options.host not in LOOPBACK and not options.api_keys:
        raise ServeUsageError(
            f"refusing to serve on {options.host} without an API key: anyone who can reach it could use "
            "the model (and the teacher behind its route). Set DISTILL_SERVE_API_KEYS (comma-separated) "
            "or --api-key-file, or serve on 127.0.0.1"
        )
    if options.canary and options.shadow is None:
        raise ServeUsageError("--canary needs the candidate build: give it with --shadow PATH")


def read_keys(env_var: str, key_file: Path | None) -> tuple[str, ...]:
    """Keys from the environment variable (comma-separated) and the file (one per line, # comments)."""
    keys = [k.strip() for k in os.environ.get(env_var, "").split(",")]
    if key_file is not None:
        try:
            lines = key_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise StageError(f"cannot read the API key file {key_file}: {exc.strerror or exc}") from None
        keys += [line.strip() for line in lines if not line.lstrip().startswith("#")]
    return tuple(k for k in keys if k)


def key_matches(given: str, keys: tuple[str, ...]) -> bool:
    """Constant time: every key is compared in full, whatever matches, so timing tells nothing."""
    given_bytes = given.encode("utf-8")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given_bytes, key.encode("utf-8"))
    return found


@dataclass
class Service:
    spec: Spec
    options: ServeOptions
    telemetry: Telemetry = field(default_factory=Telemetry)
    router: Router | None = None
    shadow: Shadow | None = None
    capture: Appender | None = None
    health: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    draining: bool = False
    failed: str | None = None  # why loading failed
    on_failed: Callable[[], None] = lambda: None  # stops the server (set by whoever runs it)
    admitted: int = 0  # requests in, not yet answered
    cut: int = 0  # requests dropped unanswered (the client left, or the grace period ran out)
    _stack: ExitStack = field(default_factory=ExitStack)
    _batchers: list[MicroBatcher] = field(default_factory=list)

    # ---- loading

    async def load(self) -> None:
        """Open the student(s) and the teacher off the loop, then start the batchers; ready after."""
        loop = asyncio.get_running_loop()
        try:
            self.router = await loop.run_in_executor(None, self._open, self.spec, self.options.route, "student")
            if self.options.shadow is not None:
                from distillbuild.spec import load_spec

                candidate = await loop.run_in_executor(None, load_spec, self.options.shadow, ("*",))
                router = await loop.run_in_executor(None, self._open, candidate, True, "candidate")
                self.shadow = Shadow(router, self.options.shadow_log, self.telemetry)
            for batcher in self._batchers:
                await batcher.start()
        except Exception as exc:  # noqa: BLE001 - said on /ready and in the log; the process stops
            self.failed = f"{type(exc).__name__}: {exc}" if not isinstance(exc, StageError) else str(exc)
            log(f"serve: could not load: {self.failed}")
            self.on_failed()
            return
        if self.spec.serve.capture:
            self.capture = open_capture(
                self.spec.resolve(self.spec.serve.capture), capture_mask(self.spec.data_files.scrub)
            )
        self.ready = True
        log(self._loaded_line())

    def _open(self, spec: Spec, route: bool, role: str) -> Router:
        threshold = route_threshold(spec) if route else None
        student, runtime = open_student(spec, self._stack)
        settings = None
        if threshold is not None:
            settings, _cache = self._stack.enter_context(
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
        serve = spec.serve
        concurrent = getattr(student, "concurrent", False)
        # Each worker process runs its own batches: the cores are shared among them.
        threads = (serve.threads or max(1, (os.cpu_count() or 1) // self.options.workers)) if concurrent else 1
        batcher = MicroBatcher(
            student.answer_many,
            max_batch=serve.max_batch if runtime in ("onnx", "pytorch") else 1,
            max_wait_s=serve.max_wait_ms / 1000,
            threads=threads,
            on_batch=self.telemetry.batch.observe,
            in_flight=lambda: self.admitted,
        )
        self._batchers.append(batcher)
        name = f"{spec.registry_name}-{role}" if role == "candidate" else f"{spec.registry_name}-student"
        if role == "student":
            self.health = {
                "student": name,
                "runtime": runtime,
                "labels": list(spec.task.labels),
                "threshold": None if threshold in (None, float("inf")) else threshold,
                "teacher": settings.model if settings else None,
                "max_batch": batcher.max_batch,
                "threads": threads,
            }
        return Router(spec, batcher, name, threshold, settings, self.telemetry, route_mask(written_scrub(spec)))

    def _loaded_line(self) -> str:
        h, o = self.health, self.options
        line = f"serve: {h['student']} ({h['runtime']}, batches of up to {h['max_batch']} on {h['threads']} thread(s))"
        if h["teacher"]:
            line += f"; below confidence {h['threshold']:.4f} the teacher {h['teacher']} answers"
        if self.shadow:
            line += f"; candidate {self.shadow.router.student_name} "
            line += f"answers {o.canary:.0%} (canary)" if o.canary else "in shadow"
            line += f", logged to {o.shadow_log}"
        if self.capture:
            line += f"; capturing to {self.capture.path}"
        return line

    # ---- admission

    def authorized(self, header: str | None) -> bool:
        if not self.options.api_keys:
            return True
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "bearer" and key_matches(token.strip(), self.options.api_keys)

    # ---- stopping

    async def stop(self) -> None:
        """After the server has finished its requests: shadow answers, batchers, capture, children."""
        self.draining, self.ready = True, False
        if self.shadow is not None:
            await self.shadow.drain(self.options.grace_s)
        for batcher in self._batchers:
            await batcher.stop(self.options.grace_s)
        for router in filter(None, (self.router, self.shadow.router if self.shadow else None)):
            await router.close()
        if self.capture is not None:
            self.capture.close()
        await asyncio.get_running_loop().run_in_executor(None, self._stack.close)
