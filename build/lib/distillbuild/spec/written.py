"""The spec as written, typed: what the semantic checks read.

The checks run beside the schema check, so that one run reports every issue, also when the
document is not valid yet. They read this view, not the defaults-applied `Spec`:

- a key the document leaves out is None (a check can tell "set to the default" from "not
  set", e.g. the Axolotl settings refused only where the user wrote them);
- a section the document leaves out (or gives as something other than a mapping, which the
  schema check reports) is None when the section is optional (`X | None` in spec/model.py),
  and otherwise an unwritten instance whose keys are all None (`is_written` tells them apart);
- values are frozen as in the typed spec (lists are tuples, mappings read-only) and not
  coerced or checked: a check that compares a value guards its type, the schema reports it.
"""

from __future__ import annotations

import dataclasses
import typing
from functools import lru_cache
from types import NoneType, UnionType
from typing import Any, Mapping, TypeVar

from distillbuild.spec.model import SpecModel, _section_types, freeze, spec_key

T = TypeVar("T")


def as_written(data: Any) -> SpecModel:
    """The typed view of a parsed spec document, valid or not."""
    return _build(SpecModel, data if isinstance(data, Mapping) else {})


def is_written(section: Any) -> bool:
    """Whether the document wrote this section (possibly empty), rather than leaving it out."""
    return section is not None and section is not _unwritten(type(section))


def schema_default(cls: type, name: str) -> Any:
    """The default the schema gives field `name` of section `cls` (None where it gives none)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.metadata["schema"].get("default")


def _build(cls: type[T], data: Mapping[str, Any]) -> T:
    types, optional = _section_types(cls), _optional_sections(cls)
    values = {}
    for f in dataclasses.fields(cls):
        value, section = data.get(spec_key(f)), types[f.name]
        if section is None:
            values[f.name] = freeze(value)
        elif isinstance(value, Mapping):
            values[f.name] = _build(section, value)
        else:
            values[f.name] = None if f.name in optional else _unwritten(section)
    return cls(**values)


@lru_cache(maxsize=None)
def _unwritten(cls: type[T]) -> T:
    """The one instance of a section that stands for "not in the document"."""
    return _build(cls, {})


@lru_cache(maxsize=None)
def _optional_sections(cls: type) -> frozenset[str]:
    """Fields of `cls` holding a section that may be absent (typed `Section | None`)."""
    hints = typing.get_type_hints(cls)
    return frozenset(
        f.name
        for f in dataclasses.fields(cls)
        if typing.get_origin(hints[f.name]) in (typing.Union, UnionType) and NoneType in typing.get_args(hints[f.name])
    )
