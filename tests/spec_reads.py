"""Which spec keys a piece of code reads: the recording spec behind the stage-contract test.

Every section of a loaded `Spec` is a frozen dataclass (spec/model.py). While `recording()` is
active, reading a field of any section records the field's key path (`teacher.concurrency`),
whoever reads it: the stage, or an engine it hands the section to. A section read as a whole
is not a read of anything yet (its fields are); an absent optional section read is recorded as
`KEY?` (the code asked whether it is there). `spec.get("a.b")` and `spec["a"]` record their key.
`dataclasses.replace` copies a section without reading it: the copy records under the
original's path, except the fields the copy was given.
"""

from __future__ import annotations

import dataclasses
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from distillbuild.spec import Spec
from distillbuild.spec.model import SpecModel, _section_types, spec_key


def section_classes(cls: type = SpecModel, seen: set[type] | None = None) -> set[type]:
    """Every section dataclass reachable from `cls` (SpecModel's fields, their fields, ...)."""
    seen = set() if seen is None else seen
    for sub in _section_types(cls).values():
        if sub is not None and sub not in seen:
            seen.add(sub)
            section_classes(sub, seen)
            for subclass in sub.__subclasses__():  # SimulatedTeacher is built where Simulated is named
                seen.add(subclass)
                section_classes(subclass, seen)
    return seen


class Recorder:
    def __init__(self) -> None:
        self.paths: dict[int, str] = {}  # id(section instance) -> its key path
        self.reads: set[str] = set()
        self.quiet = 0  # > 0 while dataclasses.replace copies a section
        self.replaced: set[tuple[int, str]] = set()  # (copy, field): a value the copy was given, not read from the spec

    def index(self, section: Any, path: str) -> None:
        """Give `section` and every section below it its key path."""
        self.paths[id(section)] = path
        for f in dataclasses.fields(section):
            value = object.__getattribute__(section, f.name)
            if dataclasses.is_dataclass(value):
                self.index(value, f"{path}.{spec_key(f)}" if path else spec_key(f))

    def read(self, section: Any, name: str, value: Any) -> None:
        path = self.paths.get(id(section))
        if self.quiet or path is None or (id(section), name) in self.replaced:
            return
        key = next((spec_key(f) for f in dataclasses.fields(section) if f.name == name), None)
        if key is None:  # a property or method, not a spec key
            return
        full = f"{path}.{key}" if path else key
        if dataclasses.is_dataclass(value):
            return  # its fields record the reads
        self.reads.add(f"{full}?" if value is None and _section_types(type(section)).get(name) else full)


@contextmanager
def recording(spec: Spec) -> Iterator[Recorder]:
    """Record every spec key read while the block runs (from `spec`'s sections)."""
    recorder = Recorder()
    recorder.index(spec, "")
    classes = section_classes() | {type(spec), SpecModel}
    field_names = {cls: {f.name for f in dataclasses.fields(cls)} for cls in classes}
    field_names[type(spec)] = field_names[SpecModel]  # Spec's own fields (path, raw, data) are no keys

    def getattribute(self: Any, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if name in field_names.get(type(self), ()):
            recorder.read(self, name, value)
        return value

    original_replace = dataclasses.replace

    def replace(obj: Any, /, **changes: Any) -> Any:
        recorder.quiet += 1
        try:
            copy = original_replace(obj, **changes)
        finally:
            recorder.quiet -= 1
        if id(obj) in recorder.paths:
            recorder.index(copy, recorder.paths[id(obj)])
            recorder.replaced.update((id(copy), name) for name in changes)
        return copy

    def get(self: Spec, dotted: str, default: Any = None) -> Any:
        recorder.reads.add(dotted)
        return original_get(self, dotted, default)

    def getitem(self: Spec, key: str) -> Any:
        recorder.reads.add(key)
        return original_getitem(self, key)

    original_get, original_getitem = Spec.get, Spec.__getitem__
    # Modules that imported `replace` by name hold their own reference to it.
    holders = [
        m
        for m in list(sys.modules.values())
        if getattr(m, "__name__", "").startswith("distillbuild") and getattr(m, "replace", None) is original_replace
    ]
    saved = {cls: cls.__dict__.get("__getattribute__") for cls in classes}
    try:
        for cls in classes:
            cls.__getattribute__ = getattribute
        Spec.get, Spec.__getitem__ = get, getitem
        dataclasses.replace = replace
        for module in holders:
            module.replace = replace
        yield recorder
    finally:
        for cls, method in saved.items():
            if method is None:
                del cls.__getattribute__
            else:
                cls.__getattribute__ = method
        Spec.get, Spec.__getitem__ = original_get, original_getitem
        dataclasses.replace = original_replace
        for module in holders:
            module.replace = original_replace


def covered(read: str, declared: tuple[str, ...]) -> bool:
    """Whether a declared params key makes DVC see a change to `read`: the key itself or a section
    above it; for `KEY?` (whether an absent section is there), also any key inside it (DVC then
    sees the key appear)."""
    key, existence = read.rstrip("?"), read.endswith("?")
    return any(key == d or key.startswith(d + ".") or (existence and d.startswith(key + ".")) for d in declared)


def unused(declared: tuple[str, ...], reads: set[str]) -> list[str]:
    """Declared keys that nothing read: neither the key, nor anything inside it, nor whether it is there."""
    keys = {r.rstrip("?") for r in reads}
    return sorted(
        d for d in declared if not any(k == d or k.startswith(d + ".") or d.startswith(k + ".") for k in keys)
    )
