"""The HTTP face of a Service: a FastAPI app, run by uvicorn.

POST /v1/chat/completions   the label, whole or streamed (server-sent events); `model` names who
                            answered, `logprobs` are the student's over the labels, `distill` says
                            whether it was routed and the student's confidence
GET  /v1/models             the student
GET  /health                liveness: the process answers (with what it serves once loaded)
GET  /ready                 readiness: 200 once the model is loaded, 503 before and while stopping
GET  /metrics               Prometheus' text format

A request is refused before the model sees it, always in OpenAI's error shape: 401 without a
valid key, 413 for a body over serve.max_body_bytes (never read whole), 400 for what the chat
API would refuse, 429 with Retry-After when serve.max_queue requests are already in, 503 with
Retry-After while loading or stopping. A request the teacher could not answer gets 502 with the
reason; one the student could not, 500.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from distillbuild.serve.router import TeacherUnavailable
from distillbuild.serve.service import Service
from distillbuild.serve.shadow import canary_pick
from distillbuild.serve.wire import ApiError, completion, parse_request, stream_events, user_text

RETRY_AFTER_S = "1"


def create_app(service: Service) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loading = asyncio.create_task(service.load())
        try:
            yield
        finally:
            if not loading.done():
                loading.cancel()
            await service.stop()

    app = FastAPI(title="distill serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    telemetry = service.telemetry

    def error(exc: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
        return error(ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", kind))

    @app.get("/health")
    async def health() -> dict:
        status = "failed" if service.failed else "ok"
        return {"status": status, "ready": service.ready, "error": service.failed, **service.health}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        if service.ready:
            return JSONResponse({"status": "ready"})
        reason = service.failed or ("stopping" if service.draining else "loading the model")
        return JSONResponse({"status": "not ready", "reason": reason}, 503, {"Retry-After": RETRY_AFTER_S})

    @app.get("/metrics")
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        telemetry.queue.set(service.admitted)
        return Response(telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        if not service.authorized(request.headers.get("authorization")):
            return _unauthorized()
        names = [service.health.get("student")] + ([service.shadow.router.student_name] if service.shadow else [])
        return JSONResponse({"object": "list", "data": [{"id": n, "object": "model"} for n in names if n]})

    def _unauthorized() -> JSONResponse:
        telemetry.rejected.labels("unauthorized").inc()
        return error(
            ApiError(
                401,
                "no valid API key: send `Authorization: Bearer KEY`",
                "invalid_request_error",
                code="invalid_api_key",
            ),
            {"WWW-Authenticate": "Bearer"},
        )

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        if not service.authorized(request.headers.get("authorization")):
            return _unauthorized()
        if not service.ready:
            telemetry.rejected.labels("draining" if service.draining else "loading").inc()
            why = "the server is stopping" if service.draining else "the model is still loading"
            return error(ApiError(503, why, "server_unavailable"), {"Retry-After": RETRY_AFTER_S})
        limits = service.spec.serve
        if service.admitted >= limits.max_queue:
            telemetry.rejected.labels("queue_full").inc()
            return error(
                ApiError(
                    429,
                    f"{service.admitted} requests are in; try again shortly (serve.max_queue)",
                    "rate_limit_error",
                    code="queue_full",
                ),
                {"Retry-After": RETRY_AFTER_S},
            )
        service.admitted += 1
        telemetry.queue.set(service.admitted)
        try:
            return await _answer(request, limits)
        except asyncio.CancelledError:  # the grace period ran out while stopping, or the client left
            service.cut += 1
            raise
        finally:
            service.admitted -= 1
            telemetry.queue.set(service.admitted)

    async def _answer(request: Request, limits) -> Response:
        try:
            body = await _read_body(request, limits.max_body_bytes)
            chat_request = parse_request(body, max_messages=limits.max_messages, max_text_chars=limits.max_text_chars)
        except ApiError as exc:
            telemetry.rejected.labels("too_large" if exc.status == 413 else "invalid").inc()
            telemetry.requests.labels("-", str(exc.status)).inc()
            return error(exc)
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:24]  # in the response, the capture record and the shadow log
        text = user_text(chat_request)
        shadow = service.shadow
        by_candidate = shadow is not None and _canary(text)
        router = shadow.router if by_candidate else service.router
        try:
            answer = await router.answer(text)
        except TeacherUnavailable as exc:
            telemetry.requests.labels(router.teacher.model if router.teacher else "-", "502").inc()
            return error(ApiError(502, str(exc), "teacher_unavailable"))
        except Exception as exc:  # noqa: BLE001 - the student failed (its llama.cpp died, its endpoint timed out)
            telemetry.requests.labels(router.student_name, "500").inc()
            return error(ApiError(500, f"the student could not answer: {type(exc).__name__}: {exc}", "student_error"))
        if by_candidate:
            telemetry.answers.labels("candidate").inc()
        telemetry.latency.labels("teacher" if answer.routed else "student").observe(time.perf_counter() - started)
        telemetry.requests.labels(answer.model, "200").inc()
        if service.capture is not None:
            service.capture.add((request_id, text, answer, answer.model))
        if shadow is not None:
            other = service.router.student if by_candidate else shadow.router.student
            shadow.compare(request_id, text, answer, by_candidate, other)
        if chat_request.stream:
            include_usage = bool(chat_request.stream_options and chat_request.stream_options.include_usage)
            return StreamingResponse(
                stream_events(request_id, answer, chat_request.logprobs, include_usage), media_type="text/event-stream"
            )
        return JSONResponse(completion(request_id, answer, chat_request.logprobs))

    def _canary(text: str) -> bool:
        return canary_pick(text, service.options.canary)

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` (by its Content-Length, or while read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        f"the body is {size:,} bytes or more; this server takes at most {limit:,} (serve.max_body_bytes)",
        "invalid_request_error",
        code="request_too_large",
    )
