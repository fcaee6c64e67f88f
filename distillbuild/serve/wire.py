"""The OpenAI chat protocol as this server speaks it: the request, checked strictly (a wrong type,
an unknown key, too many messages or too long a text is a 400 that names the key, in OpenAI's
error shape), and the answers, whole or as server-sent events the `openai` SDK streams.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ApiError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, kind: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def invalid(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", param)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(_Strict):
    include_usage: bool = False
    include_obfuscation: bool | None = None


class ChatRequest(_Strict):
    """The keys of OpenAI's chat request. Those that mean nothing to a classifier are accepted and
    type-checked, as OpenAI's own server would; a key OpenAI does not know is refused."""

    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    n: int = Field(default=1, ge=1, le=1)  # one answer: a label has no alternatives to sample
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    logit_bias: dict[str, float] | None = None
    response_format: dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None


def parse_request(body: bytes, *, max_messages: int, max_text_chars: int) -> ChatRequest:
    """The request, or an ApiError(400) naming what is wrong with it."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise invalid("the body must be a JSON object (a chat completion request)")
    messages = data.get("messages")
    if isinstance(messages, list) and len(messages) > max_messages:  # before building them all
        raise invalid(
            f"{len(messages)} messages; this server takes at most {max_messages} (serve.max_messages)", "messages"
        )
    try:
        request = ChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = _param(first["loc"])
        raise invalid(f"{param}: {_reason(first)}", param) from None
    for i, message in enumerate(request.messages):
        length = len(message.text())
        if length > max_text_chars:
            raise invalid(
                f"messages[{i}].content is {length:,} characters; this server takes at most "
                f"{max_text_chars:,} (serve.max_text_chars)",
                f"messages[{i}].content",
            )
    if not any(m.role == "user" and m.text().strip() for m in request.messages):
        raise invalid("no user message with text to answer", "messages")
    return request


def _param(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[TextPart]", "function-after", "literal"):  # pydantic's union branches
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _reason(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "not a parameter of the chat completions API"
    if error["type"] == "missing":
        return "required"
    return error["msg"][0].lower() + error["msg"][1:]


def user_text(request: ChatRequest) -> str:
    """What the student classifies: the last user message."""
    for message in reversed(request.messages):
        if message.role == "user" and message.text().strip():
            return message.text()
    return ""


def _logprobs(answer) -> dict[str, Any] | None:
    """The student's own distribution over the labels; a teacher's answer, or words naming no
    label, have none here."""
    if answer.routed or answer.label not in answer.probabilities:
        return None
    top = [
        {"token": label, "logprob": math.log(p) if p > 0 else -1e9, "bytes": list(label.encode()), "top_logprobs": []}
        for label, p in sorted(answer.probabilities.items(), key=lambda kv: -kv[1])
    ]
    chosen = next(t for t in top if t["token"] == answer.label)
    return {"content": [{**chosen, "top_logprobs": [{k: t[k] for k in ("token", "logprob", "bytes")} for t in top]}]}


def _extension(answer) -> dict[str, Any]:
    return {"routed": answer.routed, "student_confidence": round(answer.confidence, 6)}


USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def completion(request_id: str, answer, want_logprobs: bool) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.content},
                "finish_reason": "stop",
                "logprobs": _logprobs(answer) if want_logprobs else None,
            }
        ],
        "usage": USAGE,
        "distill": _extension(answer),
    }


def stream_events(request_id: str, answer, want_logprobs: bool, include_usage: bool) -> Iterator[bytes]:
    """The answer as `chat.completion.chunk` events: the role, the content, the finish, then
    [DONE], as OpenAI streams a short answer."""
    head = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": answer.model,
    }

    def event(delta: dict, finish: str | None = None, logprobs=None, **extra) -> bytes:
        chunk = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": logprobs}]}
        return b"data: " + json.dumps({**chunk, **extra}).encode() + b"\n\n"

    yield event({"role": "assistant", "content": ""})
    yield event({"content": answer.content}, logprobs=_logprobs(answer) if want_logprobs else None)
    yield event({}, "stop", distill=_extension(answer))
    if include_usage:
        yield b"data: " + json.dumps({**head, "choices": [], "usage": USAGE}).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"
