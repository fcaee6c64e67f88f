"""The extraction task's output schema as the package reads it: one FieldSpec per property.

``task.output_schema`` is a JSON Schema for an object; :func:`schema_fields` reads the subset the
encoder-extractor student and the extraction metrics handle (enums, booleans, strings, numbers,
integers, each optionally null) and raises :class:`UnsupportedSchema` with the reason for the
rest. The spec validator, the trainer and the metrics all read the schema through here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional

SPAN_KINDS = ("string", "number", "integer")
_SCALAR_TYPES = ("string", "number", "integer", "boolean")


class UnsupportedSchema(ValueError):
    """An output_schema the extraction student or the metrics cannot handle."""


@dataclass(frozen=True)
class FieldSpec:
    """One property of the answer object.

    kind: "enum" (a fixed set of values, booleans included), or "string" / "number" /
    "integer" (free values, found as spans of the input by the student)."""

    name: str
    kind: str
    values: tuple[Any, ...] = ()  # enum: the allowed values, None among them when null is allowed
    nullable: bool = False
    required: bool = True
    constraints: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_span(self) -> bool:
        return self.kind in SPAN_KINDS


def _options(prop: dict[str, Any]) -> tuple[list[str], list[Any] | None]:
    """(JSON types, enum values or None) of a property, flattening a simple anyOf/oneOf."""
    alts = prop.get("anyOf") or prop.get("oneOf")
    if alts is None:
        types = prop.get("type")
        types = [types] if isinstance(types, str) else list(types or [])
        enum = list(prop["enum"]) if "enum" in prop else ([prop["const"]] if "const" in prop else None)
        return types, enum
    types, enum = [], None
    for alt in alts:
        if not isinstance(alt, dict):
            raise UnsupportedSchema("anyOf/oneOf options must be objects")
        t, e = _options(alt)
        types += [x for x in t if x not in types]
        if e is not None:
            enum = (enum or []) + [v for v in e if v not in (enum or [])]
        elif t and t != ["null"] and enum is not None:
            raise UnsupportedSchema("mixes an enum with free values")
    if enum is not None and "null" in types and None not in enum:
        enum.append(None)
    return types, enum


def schema_fields(schema: Any) -> list[FieldSpec]:
    """The answer's fields, in the schema's order. Supported: an object whose properties are
    enums (strings, numbers, booleans, null), booleans, or strings / numbers / integers,
    each optionally nullable. Raises UnsupportedSchema saying what is not."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise UnsupportedSchema("output_schema must be a JSON Schema with type: object")
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        raise UnsupportedSchema("output_schema needs at least one property under `properties`")
    required = schema.get("required") or []
    if not isinstance(required, list) or any(r not in props for r in required):
        raise UnsupportedSchema("output_schema.required must list names of its properties")
    fields: list[FieldSpec] = []
    for name, prop in props.items():
        if not isinstance(prop, dict):
            raise UnsupportedSchema(f"property '{name}' must be a JSON Schema object")
        try:
            types, enum = _options(prop)
        except UnsupportedSchema as exc:
            raise UnsupportedSchema(f"property '{name}': {exc}") from None
        if enum is not None:
            if not enum:
                raise UnsupportedSchema(f"property '{name}': an empty enum admits no answer")
            if any(isinstance(v, (dict, list)) for v in enum):
                raise UnsupportedSchema(f"property '{name}': enum values must be strings, numbers, booleans or null")
            if len(set(json.dumps(v) for v in enum)) != len(enum):
                raise UnsupportedSchema(f"property '{name}': enum values repeat")
            fields.append(FieldSpec(name, "enum", tuple(enum), None in enum, name in required))
            continue
        base = [t for t in types if t != "null"]
        if len(base) != 1 or base[0] not in _SCALAR_TYPES:
            shown = "/".join(types) or "no type"
            raise UnsupportedSchema(
                f"property '{name}' is {shown}; the extraction student handles enums and "
                "single string, number, integer or boolean values (optionally null), "
                "not arrays, nested objects or unions"
            )
        nullable = "null" in types
        if base[0] == "boolean":
            fields.append(
                FieldSpec(name, "enum", (True, False) + ((None,) if nullable else ()), nullable, name in required)
            )
            continue
        keep = ("pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
        fields.append(FieldSpec(name, base[0], (), nullable, name in required, {k: prop[k] for k in keep if k in prop}))
    return fields


def pydantic_model(schema: dict[str, Any], name: str = "ExtractionAnswer"):
    """A strict pydantic model equivalent to the schema (as far as schema_fields reads it):
    what DeepEval's JsonCorrectnessMetric validates answers against. Fields are aliased, so any
    property name works (even `model_config` or `json`)."""
    # pydantic costs ~0.1 s at import and only the metrics use the model: the validator never pays it.
    from pydantic import ConfigDict, Field, create_model

    _PY = {"string": str, "number": float, "integer": int}
    _PD = {
        "pattern": "pattern",
        "minLength": "min_length",
        "maxLength": "max_length",
        "minimum": "ge",
        "maximum": "le",
        "exclusiveMinimum": "gt",
        "exclusiveMaximum": "lt",
    }
    definitions: dict[str, Any] = {}
    for i, f in enumerate(schema_fields(schema)):
        if f.kind == "enum":
            allowed = tuple(v for v in f.values if v is not None)
            typ: Any = Literal[allowed] if allowed else type(None)
        else:
            typ = _PY[f.kind]
            if f.constraints:
                typ = Annotated[typ, Field(**{_PD[k]: v for k, v in f.constraints.items()})]
        if f.nullable:
            typ = Optional[typ]
        definitions[f"field_{i}"] = (typ, Field(... if f.required else None, alias=f.name))
    extra = "forbid" if schema.get("additionalProperties") is False else "allow"
    return create_model(name, __config__=ConfigDict(extra=extra, strict=True), **definitions)
