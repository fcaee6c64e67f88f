"""schemas/distill.schema.json, written from the typed model (spec/model.py), its one source:
each section's class gives its keys, each field its part of the schema (`key(...)`).

    python -m distillbuild.spec.json_schema           # rewrites schemas/distill.schema.json
    python -m distillbuild.spec.json_schema --check   # exit 1 when the committed file differs

Editors and `jsonschema` read the written file; `tests/test_spec_model.py` fails when it is not
what the model writes.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from distillbuild.spec.model import SpecModel, _section_types, spec_key

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas/distill.schema.json"


def object_schema(cls: type, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A section's object: its keys from its fields, each described as its class (or, for a key
    it shares with another class, its own SCHEMA_FIELDS), or as the place it sits says."""
    types = _section_types(cls)
    own = cls.__dict__.get("SCHEMA_FIELDS", {})
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        if "schema" not in f.metadata:
            continue
        name = spec_key(f)
        part = dict((overrides or {}).get(name) or own.get(f.name) or f.metadata["schema"])
        section = types[f.name]
        if section is not None:
            part = {"type": "object", **part, **object_schema(section, f.metadata["overrides"])}
        properties[name] = part
        if f.metadata["required"]:
            required.append(name)
    out: dict[str, Any] = {"additionalProperties": False}
    if required:
        out["required"] = required
    out["properties"] = properties
    return out


def generate() -> dict[str, Any]:
    return {**SpecModel.SCHEMA_HEAD, "type": "object", **object_schema(SpecModel)}


def render() -> str:
    return json.dumps(generate(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if SCHEMA_FILE.read_text(encoding="utf-8") != text:
            print(f"{SCHEMA_FILE} is not what spec/model.py writes: run python -m distillbuild.spec.json_schema")
            return 1
        return 0
    SCHEMA_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
