"""Answers held to the label set: the constraint each endpoint understands, and the label read back.

A classification teacher asked for free text answers with words outside the labels ("economy"
for `business`), rambles past the label, or spreads its probability over near-synonyms. Held to
the labels by the server's constrained decoding, every answer is a label and decoding stops
after it. The constraint travels in the request body, in one of three forms:

- `grammar`: a GBNF grammar listing the labels (llama.cpp's server reads `grammar` in the body);
- `guided_choice`: vLLM's guided choice (a list of strings);
- `json_schema`: structured outputs whose one field is an `enum` of the labels (OpenAI's API,
  which offers no bare-string constraint); the label is read back from the JSON, and its
  logprobs from the tokens where the label's value starts.

The few-shot turns keep showing bare labels: a JSON wrapper is a format shift a small model may
not survive, so the JSON form is for the hosted models that need it.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from distillbuild.spec.model import Teacher

FORMS = ("grammar", "guided_choice", "json_schema")
JSON_FIELD = "label"


def form_for(teacher: Teacher, task_type: str, reasoning_in_reply: bool) -> str | None:
    """The constraint form this teacher's requests carry, or None (free text).

    `auto` holds the answer to the labels where the form is known: a llama.cpp teacher (grammar),
    OpenAI's own API (json_schema), vLLM replicas (guided_choice), or any endpoint whose form the
    spec names. A teacher asked to reason first writes a rationale before the label, which a
    label-only constraint would forbid."""
    if task_type != "classification" or teacher.answer_format == "text" or reasoning_in_reply:
        return None
    form = teacher.choice_constraint or _default_form(teacher)
    if teacher.answer_format == "choice" and form is None:
        return None  # semantic checks refuse this combination before any stage runs
    return form


def _default_form(teacher: Teacher) -> str | None:
    if teacher.provider == "llamacpp":
        return "grammar"
    if teacher.provider == "openai" and teacher.base_url is None:
        return "json_schema"
    if teacher.provider == "vllm":
        return "guided_choice"  # vLLM's structured outputs (llm/vllm_rows.py)
    return None  # an endpoint of unknown kind (or the stand-in): free text unless the spec names a form


def gbnf(labels: Sequence[str]) -> str:
    """A GBNF grammar whose only sentences are the labels."""

    def literal(label: str) -> str:
        return '"' + label.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "root ::= " + " | ".join(literal(label) for label in labels)


def json_schema(labels: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {JSON_FIELD: {"type": "string", "enum": list(labels)}},
        "required": [JSON_FIELD],
        "additionalProperties": False,
    }


def body_fields(form: str, labels: Sequence[str]) -> dict[str, Any]:
    """The request body's keys that carry the constraint (merged into the Chat Completions body)."""
    if form == "grammar":
        return {"grammar": gbnf(labels)}
    if form == "guided_choice":
        return {"guided_choice": list(labels)}
    if form == "json_schema":
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "strict": True, "schema": json_schema(labels)},
            }
        }
    raise ValueError(f"unknown constraint form {form!r}")


def labels_of(body: dict[str, Any]) -> tuple[str, list[str]] | None:
    """(form, labels) a request body constrains its answer to, or None: what a server (the
    stand-in) reads back. A grammar is read only in the shape `gbnf` writes."""
    if isinstance(body.get("guided_choice"), list):
        return "guided_choice", [str(x) for x in body["guided_choice"]]
    grammar = body.get("grammar")
    if isinstance(grammar, str) and grammar.startswith("root ::= "):
        parts = [p.strip() for p in grammar[len("root ::= ") :].split(" | ")]
        if all(len(p) >= 2 and p[0] == p[-1] == '"' for p in parts):
            return "grammar", [p[1:-1].replace('\\"', '"').replace("\\\\", "\\") for p in parts]
    fmt = body.get("response_format") or {}
    schema = ((fmt.get("json_schema") or {}).get("schema") or {}) if fmt.get("type") == "json_schema" else {}
    enum = ((schema.get("properties") or {}).get(JSON_FIELD) or {}).get("enum")
    if isinstance(enum, list):
        return "json_schema", [str(x) for x in enum]
    return None


def unwrap_json_choice(choice: dict[str, Any]) -> dict[str, Any]:
    """A json_schema-constrained choice as a bare-label one: the content is the label, and the
    logprobs start at the token where the label's value starts (the part of that token before
    the value, an opening quote say, cut from it and from its alternatives that share it)."""
    message = choice.get("message") or {}
    content = message.get("content") or ""
    try:
        label = json.loads(content).get(JSON_FIELD)
    except (ValueError, AttributeError):
        return choice  # not the JSON asked for: the row is read as free text (and fails as such)
    if not isinstance(label, str):
        return choice
    start = content.find(json.dumps(label, ensure_ascii=False))  # the value's opening quote
    logprobs = choice.get("logprobs")
    return {
        **choice,
        "message": {**message, "content": label},
        "logprobs": _from_offset(logprobs, start + 1) if logprobs and start >= 0 else logprobs,
    }


def _from_offset(logprobs: dict[str, Any], offset: int) -> dict[str, Any]:
    """The positions whose text covers characters from `offset` on, the first one trimmed to
    start there, and the label's closing quote and what follows it dropped."""
    content, out, at = logprobs.get("content") or [], [], 0
    for position in content:
        token = position.get("token", "")
        end = at + len(token)
        if end > offset:
            cut = max(offset - at, 0)
            if cut:
                head = token[:cut]
                position = {
                    **position,
                    "token": token[cut:],
                    "top_logprobs": [
                        {**alt, "token": alt.get("token", "")[cut:]}
                        for alt in position.get("top_logprobs") or []
                        if alt.get("token", "").startswith(head)
                    ],
                }
            if '"' in position["token"]:  # the value's closing quote: the label ends here
                position = {**position, "token": position["token"].split('"')[0]}
                if position["token"]:
                    out.append(position)
                break
            out.append(position)
        at = end
    return {**logprobs, "content": out}
