"""`distill init`: a new distillation project in a directory, ready for `dvc repro`.

It writes `distill.yaml` (commented, in the style `dvc exp run -S` leaves as it is: that command
loads the spec with ruamel and writes back every list as a new block list, dropping a comment or
blank line after its last item, and re-folds folded text past 80 columns; so lists are in block
style and followed by a key, folded lines are short), a
`data/` layout with a sample of rows (support tickets in four categories, or placeholder rows
naming the user's own labels), `.gitignore`, a README stub, then `git init` (unless inside a
repository), `dvc init` and the compiled `dvc.yaml`. It refuses to write over anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from distillbuild import git
from distillbuild.errors import EXIT_BAD_SPEC, StageError


class InitRefused(StageError):
    """The directory already holds a project's files: nothing was written (exit 2, like a bad spec)."""

    exit_code = EXIT_BAD_SPEC


SAMPLE = Path(__file__).with_name("sample_tickets.jsonl")  # 160 of the quickstart's tickets, 4 categories
SAMPLE_LABELS = ("billing", "refund", "login", "bug")
SAMPLE_INSTRUCTION = (
    "You triage customer-support tickets for a software company. Read the ticket and answer "
    "with the single category that fits it best: the category name only."
)
PLACEHOLDER_INPUTS, PLACEHOLDER_HELDOUT = 24, 8  # rows per label when the labels are the user's own
TEACHERS = ("simulated", "openai", "llamacpp")
STUDENTS = ("encoder", "causal")
WRITES = ("distill.yaml", "dvc.yaml", "data", ".gitignore", "README.md")


EXTRACTION_FIELDS = ("customer_name", "order_id")
EXTRACTION_INSTRUCTION = (
    "Read the message and answer with one JSON object and nothing else, with these fields: {fields}. "
    "Use null for a field the message does not give."
)


@dataclass(frozen=True)
class Choices:
    name: str
    task: str = "classification"  # classification | extraction
    fields: tuple[str, ...] = EXTRACTION_FIELDS  # extraction: string fields, null when absent
    labels: tuple[str, ...] = SAMPLE_LABELS
    instruction: str = SAMPLE_INSTRUCTION
    teacher: str = "simulated"  # simulated | openai | llamacpp
    model: str | None = None  # the teacher's model name (openai), default gpt-4o-mini
    base_url: str | None = None  # openai-compatible endpoint; None: OpenAI's
    gguf: str | None = None  # llamacpp: a GGUF path or package:NAME/FILE
    student: str = "encoder"  # encoder | causal
    base_model: str | None = None  # the student's base; default per kind

    @property
    def sample(self) -> bool:
        return self.task == "classification" and tuple(self.labels) == SAMPLE_LABELS

    @property
    def extraction(self) -> bool:
        return self.task == "extraction"


def _answer_settings(c: Choices) -> str:
    if c.extraction:
        return (
            f"  max_tokens: {40 + 30 * len(c.fields)}          # one JSON object\n"
            "  top_logprobs: 1          # the answer's probability: confidence for the filter"
        )
    return (
        "  max_tokens: 8\n"
        "  top_logprobs: 5          # label probabilities: soft labels for the student, confidence for the filter"
    )


def _teacher_yaml(c: Choices) -> str:
    if c.teacher == "simulated":
        return f"""teacher:
  provider: simulated      # the offline stand-in: answers from data/teacher_key.jsonl, right 93% of the time
  model: gpt-4o-sim
  temperature: 0
{_answer_settings(c)}
  concurrency: 8
  price:                   # USD per million tokens: what the same calls would cost on a real model
    input_per_mtok: 2.5
    output_per_mtok: 10
  budget_usd: 1
  simulated:
    answers: data/teacher_key.jsonl
    accuracy: 0.93
    latency_ms: 20
    seed: 7
"""
    if c.teacher == "openai":
        base = (
            f"  base_url: {c.base_url}\n"
            if c.base_url
            else "  # base_url: http://localhost:8000/v1   # unset: OpenAI's; any OpenAI-compatible endpoint works\n"
        )
        return f"""teacher:
  provider: openai
  model: {c.model or "gpt-4o-mini"}
{base}  api_key_env: OPENAI_API_KEY   # the key is read from this variable, never written anywhere
  temperature: 0
{_answer_settings(c)}
  concurrency: 8
  price:                   # USD per million tokens, from the provider's price list
    input_per_mtok: 0.15
    output_per_mtok: 0.6
  budget_usd: 5            # the teacher stage stops before spending more
  terms: >-
    Record here whether the provider's terms allow training a model on its
    outputs for this use; the model card shows this note.
"""
    return f"""teacher:
  provider: llamacpp       # a local GGUF served by llama.cpp for the length of the run (make install-llm)
  model: local
  llamacpp:
    model: {c.gguf}
    n_ctx: 2048
    threads: 2
    # chat_format: chatml   # a GGUF without a chat template (a base model): its family's format
  temperature: 0
  max_tokens: 4
  top_logprobs: 10
  concurrency: 1
  price:
    input_per_mtok: 0
    output_per_mtok: 0
"""


def _student_yaml(c: Choices) -> str:
    if c.extraction:
        return f"""student:
  kind: encoder-extractor  # one head per field: a span of the input, or null
  base_model: {c.base_model or "sentence-transformers/all-MiniLM-L6-v2"}   # packaged: works offline
  trainer: local           # CPU
  max_length: 64
  epochs: 4
  batch_size: 16
  learning_rate: 1.0e-4
  head_learning_rate: 3.0e-3
  seed: 13
"""
    if c.student == "encoder":
        return f"""student:
  kind: encoder-classifier
  base_model: {c.base_model or "sentence-transformers/all-MiniLM-L6-v2"}   # packaged: works offline
  trainer: local           # CPU
  max_length: 64
  epochs: 4
  batch_size: 16
  learning_rate: 8.0e-5
  head_learning_rate: 3.0e-3
  kd:                      # half the loss on the teacher's label probabilities
    alpha: 0.5
    temperature: 2.0
  seed: 13
"""
    return f"""student:
  kind: causal-lm
  base_model: {c.base_model or "meta-llama/Llama-3.2-1B-Instruct"}
  trainer: axolotl         # `distill stage configure` writes Axolotl's QLoRA config; `train` runs it on a GPU
  adapter: qlora
  max_length: 512
  epochs: 2
  batch_size: 8
  learning_rate: 2.0e-4
  kd:
    mode: labels
  seed: 13
"""


def _scalar(text: str) -> str:
    """`text` as a YAML string: plain where YAML reads it back as the same string, else quoted
    (`1`, `yes`, `on` would load as numbers and booleans)."""
    import yaml

    try:
        plain = yaml.safe_load(f"k: {text}")["k"] == text
    except yaml.YAMLError:
        plain = False
    return text if plain else json.dumps(text)


def _task_yaml(c: Choices) -> str:
    instruction = "".join(f"    {line}\n" for line in textwrap.wrap(c.instruction, 72))
    if c.extraction:
        required = "".join(f"    - {_scalar(f)}\n" for f in c.fields)
        properties = "".join(
            f"      {_scalar(f)}:\n        type:\n        - string\n        - 'null'\n" for f in c.fields
        )
        return f"""task:
  type: extraction
  output_schema:           # the JSON object the teacher answers and the student learns to fill
    type: object
    additionalProperties: false
    required:
{required}    properties:
{properties}  instruction: >-
{instruction}"""
    labels = "".join(f"  - {_scalar(label)}\n" for label in c.labels)
    return f"""task:
  type: classification
  labels:
{labels}  instruction: >-
{instruction}"""


def _gates_yaml(c: Choices, latency: int) -> str:
    quality = (
        "  field_accuracy:          # mean per-field exact match\n    min: 0.7\n  schema_valid_rate:\n    min: 0.99\n"
        if c.extraction
        else "  accuracy:\n    min: 0.7\n"
    )
    return f"""gates:                     # promotion is refused unless every gate holds
{quality}  retention:               # the student's score / the teacher's
    min: 0.85
  latency_p95_ms:
    max: {latency}
"""


def render_spec(c: Choices) -> str:
    data_note = (
        "a sample of the quickstart's support tickets" if c.sample else "placeholder rows: replace them with your own"
    )
    latency = 2000 if c.student == "causal" and not c.extraction else 200
    kind = "extractor" if c.extraction else "classifier"
    label_note = '"label": {...}' if c.extraction else '"label"'
    return f"""# {c.name}: a distilled {kind}. Edit this file, then `dvc repro`: the stages rerun from the
# first one whose settings or files changed. `distill validate` checks it; `distill estimate`
# says what the teacher will cost first.
# data/ holds {data_note}.
version: 1
name: {c.name}

{_task_yaml(c)}
data:
  inputs: data/inputs.jsonl     # unlabelled rows the teacher answers: {{"id", "text"}}
  heldout: data/heldout.jsonl   # gold-labelled rows, never trained on: {{"id", "text", {label_note}}}

{_teacher_yaml(c)}
filters:
  min_confidence: 0.6      # drop answers the teacher itself doubts; or {{target_precision: 0.9}} fitted on labelled rows
  confidence: renormalised # the label's share of the probability that names a label (or raw, calibrated)
  min_rows_per_label: 10   # stop before training when a label keeps fewer rows, saying why
  dedup:
    exact: true
    near_threshold: 0.9    # MinHash Jaccard of word 3-grams
  decontaminate: true      # drop training rows that copy a held-out row

split:
  val_fraction: 0.1
  seed: 13

{_student_yaml(c)}
evaluation:
  latency_samples: 100
  threads: 1

{_gates_yaml(c, latency)}
promote:
  name: {c.name}
"""


def sample_rows(c: Choices) -> tuple[list[dict], list[dict], list[dict]]:
    """(inputs, heldout, the simulated teacher's answer key)."""
    if c.extraction:
        rows = [
            _extraction_row(c.fields, split, i) for split, n in (("inputs", 120), ("heldout", 40)) for i in range(n)
        ]
    elif c.sample:
        rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        rows = [
            {
                "split": split,
                "id": f"{split[0]}{label}-{i:02d}",
                "label": label,
                "alternatives": [],
                "text": f"A {split} example of {label} ({i}): replace data/*.jsonl with your own rows.",
            }
            for label in c.labels
            for split, n in (("inputs", PLACEHOLDER_INPUTS), ("heldout", PLACEHOLDER_HELDOUT))
            for i in range(n)
        ]
    inputs = [{"id": r["id"], "text": r["text"]} for r in rows if r["split"] == "inputs"]
    heldout = [{"id": r["id"], "text": r["text"], "label": r["label"]} for r in rows if r["split"] == "heldout"]
    key = [{"text": r["text"], "label": r["label"], "alternatives": r["alternatives"]} for r in rows]
    return inputs, heldout, key


_NAMES = ("Ana Lima", "Ben Okafor", "Chen Wei", "Dana Ross", "Eli Novak", "Fay Adams", "Gus Moreau", "Hana Sato")


def _extraction_row(fields: tuple[str, ...], split: str, i: int) -> dict:
    """A placeholder message giving some of the fields (each left out now and then: null)."""
    values, parts = {}, []
    for j, field in enumerate(fields):
        if (i + j) % 5 == 4:
            values[field] = None
            continue
        value = _NAMES[(i + j) % len(_NAMES)] if "name" in field else f"{field[:2].upper()}-{1000 + 37 * i + j}"
        values[field] = value
        parts.append(f"the {field.replace('_', ' ')} is {value}")
    text = (
        f"Placeholder message {split[0]}{i}: " + ("; ".join(parts) or "nothing to extract") + ". Replace data/*.jsonl."
    )
    return {"split": split, "id": f"{split[0]}{i:03d}", "text": text, "label": values, "alternatives": []}


README = """# {name}

A distilled model built with distillbuild: the spec is `distill.yaml`, the pipeline `dvc.yaml`.

```bash
dvc repro              # teacher -> filter -> dataset -> train -> evaluate -> gate
distill summary        # what the build measured
distill serve          # the student as an OpenAI-compatible endpoint on 127.0.0.1:8000
```

Replace `data/inputs.jsonl` (rows to label) and `data/heldout.jsonl` (gold-labelled rows the
student is examined on, never trained on) with your own, point `teacher` at a real model, and
`dvc repro` again. Commit `distill.yaml`, `dvc.yaml`, `dvc.lock` and `data/`: a reviewer reads
the spec change and the metrics in the pull request (`distill diff`).
"""

GITIGNORE = """# distillbuild: the teacher cache and models live outside git (DVC tracks the outputs)
.distill/
__pycache__/
build/report.html
"""


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise StageError(f"{' '.join(command)} failed: {(done.stderr or done.stdout).strip()}")


def check_spec(choices: Choices, directory: Path) -> None:
    """The spec these choices give, validated with its data in a scratch directory before anything
    is written where the user asked (a refused spec leaves nothing behind)."""
    import tempfile

    from distillbuild.errors import SpecError
    from distillbuild.spec import load_spec

    if choices.gguf and not choices.gguf.startswith("package:") and not Path(choices.gguf).is_absolute():
        choices = replace(choices, gguf=str((directory / choices.gguf).resolve()))  # as seen from the project
    with tempfile.TemporaryDirectory(prefix="distill-init-") as scratch:
        root = Path(scratch)
        inputs, heldout, key = sample_rows(choices)
        (root / "data").mkdir()
        for name, rows in (("inputs", inputs), ("heldout", heldout), ("teacher_key", key)):
            _write_jsonl(root / f"data/{name}.jsonl", rows)
        (root / "distill.yaml").write_text(render_spec(choices), encoding="utf-8")
        try:
            load_spec(root / "distill.yaml")
        except SpecError as exc:
            raise InitRefused(
                "these choices give a spec that does not validate, so nothing was written: "
                + "; ".join(f"{i.path}: {i.message}" for i in exc.issues)
            ) from None


def create(directory: Path, choices: Choices, log: Callable[[str], None]) -> list[str]:
    """The project in `directory` (made if missing); what it wrote. Nothing is overwritten."""
    existing = [name for name in WRITES if (directory / name).exists()]
    if existing:
        raise InitRefused(
            f"{directory} already has {', '.join(existing)}: distill init writes over nothing "
            "(choose an empty directory)"
        )
    check_spec(choices, directory)
    directory.mkdir(parents=True, exist_ok=True)
    inputs, heldout, key = sample_rows(choices)
    (directory / "data").mkdir()
    _write_jsonl(directory / "data/inputs.jsonl", inputs)
    _write_jsonl(directory / "data/heldout.jsonl", heldout)
    written = ["distill.yaml", "data/inputs.jsonl", "data/heldout.jsonl"]
    if choices.teacher == "simulated":
        _write_jsonl(directory / "data/teacher_key.jsonl", key)
        written.append("data/teacher_key.jsonl")
    (directory / "distill.yaml").write_text(render_spec(choices), encoding="utf-8")
    (directory / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    (directory / "README.md").write_text(README.format(name=choices.name), encoding="utf-8")
    written += [".gitignore", "README.md"]
    if git.toplevel(directory) is None:
        _run(["git", "init", "-q"], directory)
        written.append(".git/")
    if not (directory / ".dvc").exists():
        subdir = ["--subdir"] if git.toplevel(directory) != directory.resolve() else []
        _run([sys.executable, "-m", "dvc", "init", "-q", *subdir], directory)
        _run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], directory)
        written.append(".dvc/")
    return written
