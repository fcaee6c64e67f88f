"""JSON Schema validation of a loaded spec, with errors located by line and key path."""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

from distillbuild.errors import SpecIssue
from distillbuild.secrets import looks_like_secret
from distillbuild.spec.loader import LoadedYaml, join_path

# Inside the package (a link to schemas/distill.schema.json in a checkout, a copy in a wheel).
SCHEMA_PATH = Path(__file__).with_name("distill.schema.json")

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if looks_like_secret(text):
        return "a value that looks like a secret (not shown)"
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _expected_type(t: Any) -> str:
    names = [_TYPE_NAMES.get(x, x) for x in (t if isinstance(t, list) else [t])]
    return " or ".join(names)


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _repeated(items: list[Any]) -> str:
    seen, dupes = set(), []
    for item in items:
        key = json.dumps(item, sort_keys=True, default=str)
        if key in seen:
            dupes.append(str(item))
        seen.add(key)
    return ", ".join(dupes)


def _plural(n: Any, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


# One message per jsonschema validator that fails with one message: (instance, validator value) -> text.
_MESSAGE: dict[str, Callable[[Any, Any], str]] = {
    "type": lambda inst, val: f"expected {_expected_type(val)}, got {_describe(inst)}",
    "enum": lambda inst, val: (
        f"{_describe(inst)} is not one of: {', '.join(str(x) for x in val)}{did_you_mean(inst, [str(x) for x in val])}"
    ),
    "const": lambda inst, val: f"must be {_describe(val)}, got {_describe(inst)}",
    "minimum": lambda inst, val: f"must be >= {val}, got {_describe(inst)}",
    "maximum": lambda inst, val: f"must be <= {val}, got {_describe(inst)}",
    "exclusiveMinimum": lambda inst, val: f"must be > {val}, got {_describe(inst)}",
    "exclusiveMaximum": lambda inst, val: f"must be < {val}, got {_describe(inst)}",
    "minItems": lambda inst, val: f"needs at least {_plural(val, 'item')}, got {len(inst)}",
    "maxItems": lambda inst, val: f"allows at most {val} items, got {len(inst)}",
    "uniqueItems": lambda inst, val: f"items must be unique; repeated: {_repeated(inst)}",
    "minLength": lambda inst, val: "must not be empty" if val == 1 else f"must be at least {val} characters",
    "minProperties": lambda inst, val: f"needs at least {_plural(val, 'key')}",
    "pattern": lambda inst, val: f"{_describe(inst)} does not match the expected form /{val}/",
}


def _messages(error) -> Iterator[tuple[str, str]]:
    """(key path, message) pairs for one jsonschema error."""
    path = ""
    for part in error.absolute_path:
        path = join_path(path, part)
    v, inst, val = error.validator, error.instance, error.validator_value
    if v == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        for key in sorted(set(inst) - set(allowed), key=str):
            hint = did_you_mean(key, allowed) or (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
            yield join_path(path, key), f"unknown key '{key}'{hint}"
    elif v == "required":
        for key in val:
            if key not in inst:
                yield path, f"missing required key '{key}'"
    elif v in ("oneOf", "anyOf"):
        yield from _alternatives_messages(error, path)
    elif v in _MESSAGE:
        yield path, _MESSAGE[v](inst, val)
    else:
        yield path, error.message


def _alternatives_messages(error, path: str) -> Iterator[tuple[str, str]]:
    """A oneOf/anyOf of types (a path, or a mapping): what is wrong inside the branch the value's
    type picks, or which types are taken; not "is not valid under any of the given schemas"."""
    branch = _branch_of_type(error)
    inside = [
        m
        for sub in error.context
        if branch is not None and sub.schema_path and sub.schema_path[0] == branch
        for m in _messages(sub)
    ]
    if inside:
        yield from inside
    elif branch is None and all("type" in b for b in error.validator_value):
        types = [t for b in error.validator_value for t in (b["type"] if isinstance(b["type"], list) else [b["type"]])]
        yield path, f"expected {_expected_type(list(dict.fromkeys(types)))}, got {_describe(error.instance)}"
    else:
        yield path, error.message


def _branch_of_type(error) -> int | None:
    """The one oneOf/anyOf branch whose `type` the value has (None: no single such branch)."""

    def has_type(branch: dict[str, Any]) -> bool:
        types = branch.get("type", [])
        return any(_validator().is_type(error.instance, t) for t in ([types] if isinstance(types, str) else types))

    matching = [i for i, branch in enumerate(error.validator_value) if has_type(branch)]
    return matching[0] if len(matching) == 1 else None


def schema_issues(doc: LoadedYaml) -> list[SpecIssue]:
    issues = []
    for error in _validator().iter_errors(doc.data):
        for path, message in _messages(error):
            issues.append(SpecIssue(doc.file, doc.line_of(path), path, message))
    return issues


def apply_defaults(data: Any, node: dict[str, Any] | None = None) -> Any:
    """A copy of `data` with the schema's `default` values filled in where keys are absent.

    Defaults live in the schema alone, so documentation, editors and code agree. Only
    sections the user wrote are filled: an absent optional section stays absent, except
    the ones stages always read (added by the caller)."""
    node = schema() if node is None else node
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for key, sub in node.get("properties", {}).items():
        if key in out:
            out[key] = apply_defaults(out[key], sub)
        elif "default" in sub:
            out[key] = sub["default"]
        elif (
            sub.get("type") == "object"
            and "properties" in sub
            and not sub.get("required")
            and not sub.get("minProperties")
        ):  # an empty one would be invalid: it must be written
            out[key] = apply_defaults({}, sub)
    return out
