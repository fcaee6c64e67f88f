"""The spec as typed, frozen sections: one dataclass per section and per nested object of
schemas/distill.schema.json, built once by `load_spec` from the validated data with defaults.

    spec.task.labels                    # tuple of str, or None (not a classification task)
    spec.teacher.price.input_per_mtok   # Price, or None when the spec gives no price
    spec.student.kd.alpha               # the schema's default when the spec leaves it out

Field names are the spec's keys (a field that needs another name says which key it holds in
its metadata, see `spec_key`). Values are as the YAML gives them (an integer stays an
integer where the schema says number): no coercion, so what reaches an output file is what
the spec says. Lists become tuples and mappings read-only (`MappingProxyType`); `thaw` turns
them back into plain dicts and lists for JSON and YAML writers. An optional section the spec
leaves out is None; sections whose keys all have defaults are always there.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType, NoneType, UnionType
from typing import Any, Mapping

# ---------------------------------------------------------------------------------------------
# Shared shapes


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input_per_mtok: float
    output_per_mtok: float


@dataclass(frozen=True)
class RateLimit:
    """Requests and tokens per minute (None: no limit). The client's limits on an endpoint, and
    the limits the teacher's stand-in enforces (`teacher.simulated.limits`)."""

    rpm: int | None
    tpm: int | None


@dataclass(frozen=True)
class Simulated:
    """The offline stand-in behind an endpoint (provider: simulated)."""

    answers: str  # answer key, relative to the spec's directory
    accuracy: float
    seed: int
    latency_ms: float
    latency_sigma: float


@dataclass(frozen=True)
class Faults:
    """Fault injection of the teacher's stand-in: each a probability per request."""

    rate_limit: float
    server_error: float
    timeout: float
    connection_reset: float
    malformed: float
    truncated: float


@dataclass(frozen=True)
class SimulatedTeacher(Simulated):
    limits: RateLimit
    faults: Faults
    reasoning: bool | None = None  # a reasoning model's stand-in: reasoning_content in every answer


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible endpoint: what the teacher and both judges share, so one settings
    constructor takes any of them."""

    provider: str  # openai | simulated
    model: str
    base_url: str | None
    api_key_env: str
    temperature: float
    max_tokens: int
    concurrency: int
    timeout_s: float
    max_retries: int
    rate_limit: RateLimit
    price: Price | None
    budget_usd: float | None
    simulated: Simulated | None


# ---------------------------------------------------------------------------------------------
# Sections


@dataclass(frozen=True)
class Task:
    type: str  # classification | extraction | generation
    instruction: str
    labels: tuple[str, ...] | None  # classification only
    output_schema: Mapping[str, Any] | None  # extraction only: a JSON Schema, a free mapping
    # Few-shot turns for the teacher: inline {input, answer} items, or a file of them (see spec/inputs.py).
    examples: tuple[Mapping[str, Any], ...] | str | None = None
    input_template: str | None = None  # rows with several fields -> the input text


@dataclass(frozen=True)
class Scrub:
    """`data.scrub`: what `distill import-logs` masks (distillbuild/curate/scrub.py)."""

    email: bool = True
    phone: bool = True
    card: bool = True
    patterns: tuple[Mapping[str, Any], ...] = ()  # {name, regex}


@dataclass(frozen=True)
class DataFiles:
    """The `data` section (paths relative to the spec's directory)."""

    inputs: str  # the rows the teacher answers: {"id", "text"} or the template's fields
    heldout: str  # gold-labelled rows, never trained on: the teacher's and the student's exam
    scrub: Scrub | None = None  # PII rules for `distill import-logs`
    heldout_sets: Mapping[str, str] = field(default_factory=dict)  # more held-out sets by name, gated as NAME@SET
    human: str | None = None  # people's labels, trained on beside the teacher's
    human_share: float | None = None  # oversample the human rows to this share of the training split
    train_on: str = "both"  # both | teacher | human: which rows the student trains on


@dataclass(frozen=True)
class LlamaCpp:
    """A local GGUF teacher served by llama.cpp (teacher.provider: llamacpp)."""

    model: str  # a path relative to the spec, or package:NAME/FILE
    n_ctx: int
    threads: int
    startup_timeout_s: float
    chat_format: str | None = None  # llama-cpp-python's --chat_format, for a GGUF without a chat template


@dataclass(frozen=True)
class PipelineTeacher:
    """Another pipeline's student as the teacher (teacher.provider: pipeline)."""

    path: str  # its spec, or the directory holding distill.yaml, relative to this spec
    version: str | None  # a `distill promote` tag its built model must match
    startup_timeout_s: float


@dataclass(frozen=True)
class Canary:
    """The first answers checked before the rest is paid for (teacher.canary)."""

    requests: int  # 0: no canary
    min_usable: float


@dataclass(frozen=True)
class Reasoning:
    """teacher.reasoning: the teacher's reasoning recorded beside its answer."""

    mode: str  # prompt | field | explain
    marker: str  # prompt mode: what opens the answer's line (and a trace student's)
    instruction: str | None  # prompt and explain modes: how the teacher is asked (None: the mode's default)
    max_tokens: int = 256  # explain mode: the rationale's length limit


@dataclass(frozen=True)
class Teacher(Endpoint):
    top_logprobs: int
    answer_format: str  # auto | choice | text: classification answers held to the labels or read from text
    choice_constraint: str | None  # grammar | guided_choice | json_schema; None: by provider
    api: str  # chat | completions
    token_ids: bool
    tokenizer: str | None
    samples: int
    seed: int | None
    batch: bool
    terms: str | None
    simulated: SimulatedTeacher | None
    canary: Canary | None = None
    llamacpp: LlamaCpp | None = None
    pipeline: PipelineTeacher | None = None
    reasoning: Reasoning | None = None


@dataclass(frozen=True)
class Judge(Endpoint):
    """`filters.judge` and `evaluation.judge`: DeepEval's G-Eval through an endpoint."""

    criteria: str | None
    evaluation_steps: tuple[str, ...] | None
    min_score: float
    logprobs: bool


@dataclass(frozen=True)
class Generator:
    """`seed.generator`: the endpoint that writes new inputs; each key given replaces the
    teacher's (None: the teacher's)."""

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int | None = None
    timeout_s: float | None = None
    max_retries: int | None = None
    rate_limit: RateLimit | None = None
    price: Price | None = None
    budget_usd: float | None = None
    llamacpp: LlamaCpp | None = None
    simulated: SimulatedTeacher | None = None

    def over(self, teacher: Teacher, temperature: float, max_tokens: int) -> Teacher:
        """The teacher's section with this generator's keys in its place, at the seed stage's
        temperature and length, asking no logprobs, samples or batch."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}
        if given.get("provider") not in (None, teacher.provider):  # another provider: none of the teacher's own blocks
            given.setdefault("llamacpp", None)
            given.setdefault("simulated", None)
            given.setdefault("base_url", None)
        return dataclasses.replace(
            teacher,
            **given,
            temperature=temperature,
            max_tokens=max_tokens,
            top_logprobs=0,
            token_ids=False,
            samples=1,
            seed=None,
            batch=False,
            canary=None,
            pipeline=None,
        )


@dataclass(frozen=True)
class Seed:
    """The `seed` stage: new inputs written by a generator (distillbuild/seed/)."""

    per_label: int | None
    count: int | None
    attributes: Mapping[str, tuple[str, ...]] | None
    topics: tuple[str, ...] | None
    instruction: str | None
    per_request: int
    examples: int
    temperature: float
    max_tokens: int
    max_rounds: int
    min_chars: int
    max_chars: int
    near_threshold: float
    seed: int
    generator: Generator | None

    def endpoint(self, teacher: Teacher) -> Teacher:
        """The section the stage opens: the teacher's, with the generator's keys in place."""
        return (self.generator or Generator()).over(teacher, self.temperature, self.max_tokens)


@dataclass(frozen=True)
class Dedup:
    exact: bool
    near_threshold: float | None


@dataclass(frozen=True)
class Rules:
    """Rules on the teacher's answers; None where the spec sets none."""

    min_chars: int | None
    max_chars: int | None
    must_match: str | None
    must_not_match: str | None
    max_per_class: int | None


@dataclass(frozen=True)
class Calibration:
    """filters.calibration: how calibrated confidence and a fitted threshold learn from labelled rows."""

    method: str  # temperature | contextual
    fit_on: str  # auto | inputs | human | heldout
    content_free: tuple[str, ...]


@dataclass(frozen=True)
class Filters:
    min_confidence: float | Mapping[str, float]  # a threshold, or {target_precision} / {keep_share} to fit one
    confidence: str  # raw | renormalised | calibrated
    min_label_mass: float
    calibration: Calibration
    label_from: tuple[str, ...]
    min_rows_per_label: int
    dedup: Dedup
    min_agreement: float
    decontaminate: bool
    decontaminate_threshold: float
    seed_label_match: bool
    rules: Rules
    judge: Judge | None

    @property
    def threshold_target(self) -> dict[str, float] | None:
        """min_confidence as a target to fit ({target_precision} or {keep_share}); None for a number."""
        return None if isinstance(self.min_confidence, (int, float)) else dict(self.min_confidence)


@dataclass(frozen=True)
class Split:
    """Train/validation split by a hash of each row's id: stable as rows are added."""

    val_fraction: float  # share of the kept rows held out for validation
    seed: int  # salts the hash: a new seed draws a new split


@dataclass(frozen=True)
class StudentEndpoint:
    """A causal-LM student served behind an OpenAI-compatible endpoint, for evaluation."""

    base_url: str
    model: str
    api_key_env: str | None


@dataclass(frozen=True)
class Kd:
    mode: str  # labels | logits
    alpha: float
    temperature: float


@dataclass(frozen=True)
class PairJudge:
    """student.preference.judge: filters.judge scores both answers of a pair."""

    min_margin: float  # the chosen answer's score must beat the rejected one's by this much


@dataclass(frozen=True)
class Preference:
    """student.preference: DPO after SFT on (teacher, student) answer pairs."""

    beta: float
    learning_rate: float
    epochs: int
    max_pairs: int | None
    judge: PairJudge | None = None


@dataclass(frozen=True)
class Lora:
    r: int
    alpha: int
    dropout: float


@dataclass(frozen=True)
class Gpu:
    precision: str
    attention: str
    sample_packing: bool
    optimizer: str
    gradient_checkpointing: bool
    lora_kernels: bool


@dataclass(frozen=True)
class Distributed:
    strategy: str  # none | deepspeed | fsdp
    zero_stage: int
    offload: bool
    launcher: str  # accelerate | ray
    workers: int


@dataclass(frozen=True)
class Student:
    endpoint: StudentEndpoint | None
    kind: str  # encoder-classifier | encoder-extractor | causal-lm
    base_model: str
    trainer: str  # local | axolotl
    max_length: int
    epochs: int
    batch_size: int
    learning_rate: float
    head_learning_rate: float
    seed: int
    reasoning: str  # answer | trace | step_by_step: what a causal-LM student learns
    preference: Preference | None  # DPO after SFT: the pairs and preference stages run when set
    kd: Kd
    lora: Lora
    chat_template: str | None
    adapter: str  # qlora | lora | full
    device: str  # auto | gpu | cpu
    gpu: Gpu
    distributed: Distributed
    axolotl: Mapping[str, Any] | None  # the escape hatch: Axolotl keys as written, a free mapping
    class_weights: str
    early_stopping_patience: int | None
    finetune: str
    threads: int | None


@dataclass(frozen=True)
class Evaluation:
    latency_samples: int
    latency_rounds: int
    threads: int
    min_heldout_rows: int
    bootstrap: int
    max_new_tokens: int
    student_usd_per_hour: float
    judge: Judge | None
    # another variant's predictions.json on the same held-out rows: a path, or {predictions, student}
    compare_with: str | Mapping[str, Any] | None = None

    @property
    def compared_predictions(self) -> str | None:
        """The other variant's predictions.json (relative to the spec), or None."""
        cw = self.compare_with
        return cw if cw is None or isinstance(cw, str) else cw["predictions"]

    @property
    def compared_column(self) -> str:
        """The predictions' column holding the compared student's labels: `predicted` (the
        student that build gated) or `sft_predicted` (its SFT student before DPO)."""
        cw = self.compare_with
        return "sft_predicted" if isinstance(cw, Mapping) and cw.get("student") == "sft" else "predicted"


@dataclass(frozen=True)
class Promote:
    name: str


@dataclass(frozen=True)
class Route:
    min_accuracy: float | None = None
    max_teacher_share: float | None = None


@dataclass(frozen=True)
class Drift:
    """Thresholds for `distill drift` (its defaults when the spec has no `drift` section)."""

    max_ood_share: float = 0.15
    max_label_shift: float = 0.15
    sample: int = 5000


@dataclass(frozen=True)
class Export:
    format: str  # onnx | gguf
    quantize: str | None  # onnx: none | int8 (default none); gguf: f16 | q8_0 | ... (default q8_0)
    max_disagreement: float
    opset: int  # onnx only

    def __post_init__(self) -> None:
        if self.quantize is None:  # the default depends on the format: no schema default can say so
            object.__setattr__(self, "quantize", QUANTIZE_DEFAULT[self.format])


# What each export format can quantize to, the default first (the semantic check refuses the rest).
QUANTIZE_BY_FORMAT = {"onnx": ("none", "int8"), "gguf": ("q8_0", "f16", "q6_k", "q5_k_m", "q4_k_m", "q4_0")}
QUANTIZE_DEFAULT = {fmt: kinds[0] for fmt, kinds in QUANTIZE_BY_FORMAT.items()}


@dataclass(frozen=True)
class SpecModel:
    """The whole spec, typed: the top-level sections. `Spec` adds where it was loaded from."""

    version: int
    name: str
    task: Task
    # The `data` section: `Spec.data` is the whole spec as a mapping (with defaults).
    data_files: DataFiles = field(metadata={"key": "data"})
    seed: Seed | None  # the seed stage runs only when the spec has this section
    teacher: Teacher
    filters: Filters
    split: Split
    student: Student
    evaluation: Evaluation
    gates: Mapping[str, Mapping[str, Any]]  # metric name -> bound ({min, max, on}) as written
    promote: Promote | None
    export: Export | None  # the export stage runs only when the spec has this section
    route: Route | None  # and the route stage
    drift: Drift  # `distill drift` thresholds (their defaults when the spec has no such section)

    @property
    def registry_name(self) -> str:
        """What a passing build is registered as: promote.name, else the spec's name."""
        return self.promote.name if self.promote else self.name


# ---------------------------------------------------------------------------------------------
# Building


def spec_key(f: dataclasses.Field) -> str:
    """The spec key a field holds: its name, unless its metadata names another."""
    return f.metadata.get("key", f.name)


def freeze(value: Any) -> Any:
    """Mappings read-only and lists tuples, all the way down."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again (what JSON and YAML writers take), from `freeze`'s output."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


@lru_cache(maxsize=None)
def _section_types(cls: type) -> dict[str, type | None]:
    """Field name -> the dataclass its value is built into (None: a value kept as it is)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, type | None] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        union = typing.get_origin(hint) in (typing.Union, UnionType)  # X | None, or Optional[Mapping]
        options = typing.get_args(hint) if union else (hint,)
        classes = [t for t in options if t is not NoneType and dataclasses.is_dataclass(t)]
        out[f.name] = classes[0] if classes else None
    return out


def section_values(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `cls` from a validated, defaults-applied mapping, as keyword arguments:
    nested sections built, absent keys None."""
    types = _section_types(cls)
    values = {}
    for f in dataclasses.fields(cls):
        value, section = data.get(spec_key(f)), types[f.name]
        values[f.name] = None if value is None else build(section, value) if section else freeze(value)
    return values


def build(cls: type, data: Mapping[str, Any]) -> Any:
    """An instance of the section dataclass `cls` from its part of the spec."""
    return cls(**section_values(cls, data))
