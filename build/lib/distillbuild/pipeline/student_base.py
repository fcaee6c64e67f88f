"""What trainers and evaluators load as the student's base model.

`student.base_model` as the spec gives it (a hub id, or a directory beside the spec), except a
GGUF file (a path, or `package:NAME/FILE` inside an installed package): that becomes its Hugging
Face directory in the repository's model cache (distillbuild.train.gguf_base), named relative to
the spec's directory when it lies inside the repository, so configs stay portable.
"""

from __future__ import annotations

import os

from distillbuild.console import log
from distillbuild.errors import StageError
from distillbuild.llm.cache import cache_dir
from distillbuild.spec import Spec
from distillbuild.spec.model_files import resolve_model_file
from distillbuild.train.gguf_base import is_gguf, materialize


def student_base(spec: Spec) -> str:
    base = spec.student.base_model
    if not is_gguf(base):
        return base
    try:
        gguf_file = resolve_model_file(base, spec.dir)
    except FileNotFoundError as exc:
        raise StageError(f"student.base_model: {exc}") from None
    directory = materialize(gguf_file, cache_dir(spec.repo_root) / "models", log)
    return os.path.relpath(directory, spec.dir) if directory.is_relative_to(spec.repo_root) else str(directory)


def student_base_path(spec: Spec) -> str:
    """student_base() as loaders take it: a directory (resolved beside the spec) or a hub id."""
    base = student_base(spec)
    local = spec.resolve(base)
    return str(local) if local.is_dir() else base
