"""Checks a schema cannot express: files, repository bounds, secrets, cross-key rules."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterator

from distillbuild import git
from distillbuild.errors import SpecIssue
from distillbuild.metric_names import (
    COMPARED_METRICS,
    GATE_FIGURE_KEY,
    GATE_FIGURE_OLD_KEY,
    HELDOUT_SET_METRICS,
    METRICS_BY_TASK,
    PREFERENCE_METRICS,
    ROUTE_METRICS,
    WITH_INTERVALS,
    gate_figure,
    metric_range,
)
from distillbuild.secrets import SECRET_KEY_NAMES, looks_like_secret
from distillbuild.spec.answer_checks import answer_issues
from distillbuild.spec.few_shot import few_shot_issues
from distillbuild.spec.loader import LoadedYaml, get_path, join_path
from distillbuild.spec.model import QUANTIZE_BY_FORMAT
from distillbuild.spec.model_files import resolve_model_file, resolve_pipeline_spec
from distillbuild.spec.output_schema import UnsupportedSchema, schema_fields
from distillbuild.spec.schema import did_you_mean
from distillbuild.spec.vocabulary import logit_kd_requested, vocabulary_issues

# Spec keys that name files, and whether the file must already exist.
FILE_KEYS = (
    "data.inputs",
    "data.heldout",
    "data.human",
    "task.examples",
    "teacher.simulated.answers",
    "seed.generator.simulated.answers",
    "filters.judge.simulated.answers",
    "evaluation.judge.simulated.answers",
)


CAUSAL_MIN_LENGTH = 128


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, key, value) for every mapping entry and list item, depth first."""
    if isinstance(value, dict):
        for k, v in value.items():
            child = join_path(path, k)
            yield child, k, v
            yield from _walk(v, child)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            child = join_path(path, i)
            yield child, i, v
            yield from _walk(v, child)


def find_repo_root(start: Path) -> Path:
    """The repository a spec belongs to (distillbuild.git.repo_root)."""
    return git.repo_root(start)


Issues = Iterator[tuple[str, str]]  # (key path, message)


def semantic_issues(
    doc: LoadedYaml, spec_dir: Path, repo_root: Path, to_be_written: tuple[str, ...] = ()
) -> list[SpecIssue]:
    """Every issue the schema cannot see, in a fixed order: secrets, numbers, paths, the task and
    the student, the teacher, filters, what filters and distillation need from the teacher, the
    trainer, gates, judges."""
    data = doc.data
    found = [
        *_secret_issues(data),
        *_non_finite_issues(data),
        *_path_issues(data, spec_dir, repo_root, to_be_written),
        *_task_and_student_issues(data),
        *few_shot_issues(data, spec_dir),
        *_teacher_issues(data, spec_dir),
        *_filter_rule_issues(data),
        *answer_issues(data),
        *_teacher_signal_issues(data),
        *vocabulary_issues(data, spec_dir),
        *axolotl_issues(data),
        *_simulated_token_ids_issues(data),
        *_gate_issues(data),
        *_judge_issues(data),
        *_export_issues(data),
        *_human_issues(data),
        *_seed_issues(data, spec_dir),
        *_reasoning_issues(data),
        *_preference_issues(data),
        *_compare_with_issues(data, spec_dir, repo_root),
    ]
    return [SpecIssue(doc.file, doc.line_of(path), path, message) for path, message in found]


def _secret_issues(data: Any) -> Issues:
    """An inline key is refused wherever it is, and its value is never printed."""
    for path, key, value in _walk(data):
        if isinstance(key, str) and SECRET_KEY_NAMES.match(key) and not isinstance(value, (dict, list)):
            yield (
                path,
                (
                    "secrets are never written in the spec: put the key in an environment variable "
                    "and name it in teacher.api_key_env"
                ),
            )
        elif looks_like_secret(value):
            yield (
                path,
                (
                    "this value looks like an API key; secrets are never written in the spec "
                    "(name an environment variable in teacher.api_key_env)"
                ),
            )


def _non_finite_issues(data: Any) -> Issues:
    """NaN and infinity pass every min/max comparison in the schema; refuse them here."""
    for path, _key, value in _walk(data):
        if isinstance(value, float) and not math.isfinite(value):
            yield path, f"must be a finite number, got {value}"


def _path_issues(data: Any, spec_dir: Path, repo_root: Path, to_be_written: tuple[str, ...] = ()) -> Issues:
    """Files: relative, inside the repository, present (except those the command is about to
    write, e.g. data.inputs for `distill import-logs`); a local base model: an existing directory."""
    sets = get_path(data, "data.heldout_sets")
    named = [f"data.heldout_sets.{k}" for k in sets] if isinstance(sets, dict) else []
    for dotted in (*FILE_KEYS, *named):
        value = get_path(data, dotted)
        if not isinstance(value, str) or not value:
            continue
        if Path(value).is_absolute() or re.match(r"^[A-Za-z]:[\\/]", value):
            yield dotted, f"'{value}' is absolute; paths are relative to the spec so the pipeline is portable"
            continue
        try:
            target = (spec_dir / value).resolve()
            exists, is_dir = target.exists(), target.is_dir()
        except (OSError, ValueError) as exc:  # embedded NUL, name too long, ...
            yield dotted, f"not a usable path ({exc})"
            continue
        if not target.is_relative_to(repo_root):
            yield dotted, f"'{value}' leaves the repository ({repo_root}); keep data inside it so DVC tracks it"
        elif not exists and dotted not in to_be_written:
            yield dotted, f"file '{value}' does not exist (looked for {target})"
        elif is_dir:
            yield dotted, f"'{value}' is a directory; expected a JSON Lines file"
    yield from _base_model_issues(data, spec_dir, repo_root)


def _base_model_issues(data: Any, spec_dir: Path, repo_root: Path) -> Issues:
    base_model = get_path(data, "student.base_model")
    if isinstance(base_model, str) and base_model.lower().endswith(".gguf"):
        yield from _gguf_base_issues(data, base_model, spec_dir)
        return
    if not (isinstance(base_model, str) and (base_model.startswith(("./", "../", "/")) or base_model.startswith("~"))):
        return
    try:
        target = (spec_dir / base_model).expanduser().resolve()
        is_dir = target.is_dir()
    except (OSError, ValueError) as exc:
        yield "student.base_model", f"not a usable path ({exc})"
    else:
        if not target.is_relative_to(repo_root) and not Path(base_model).is_absolute():
            yield "student.base_model", f"'{base_model}' leaves the repository"
        elif not is_dir:
            yield "student.base_model", f"directory '{base_model}' does not exist"


def _gguf_base_issues(data: Any, base_model: str, spec_dir: Path) -> Issues:
    """A GGUF base model is a causal LM, converted once for training; the file must be there."""
    if get_path(data, "student.kind") != "causal-lm":
        yield "student.base_model", "a GGUF file is a causal language model: it needs student.kind causal-lm"
    try:
        resolve_model_file(base_model, spec_dir)
    except FileNotFoundError as exc:
        yield "student.base_model", str(exc)


def _task_and_student_issues(data: Any) -> Issues:
    """What each task type needs, and which students (kind, trainer) can learn it."""
    task_type = get_path(data, "task.type")
    if task_type == "classification" and get_path(data, "task.labels") is None:
        yield "task", "classification needs task.labels"
    if task_type == "extraction" and get_path(data, "task.output_schema") is None:
        yield "task", "extraction needs task.output_schema"
    if task_type != "classification" and get_path(data, "task.labels") is not None:
        yield "task.labels", f"labels apply to classification only, not {task_type}"

    kind, trainer = get_path(data, "student.kind"), get_path(data, "student.trainer")
    if kind == "encoder-classifier" and task_type not in (None, "classification"):
        yield "student.kind", f"an encoder-classifier student needs task.type classification, not {task_type}"
    if kind == "encoder-extractor":
        yield from _extractor_issues(data, task_type, trainer)
    if kind == "causal-lm" and trainer == "local":
        yield (
            "student.trainer",
            "the local trainer trains encoder-classifier students; causal-lm needs trainer: axolotl",
        )
    if kind == "causal-lm" and task_type == "extraction":
        yield (
            "student.kind",
            (
                "extraction is evaluated for encoder-extractor students; a causal-LM extraction "
                "student is not supported yet (use kind: encoder-extractor, trainer: local)"
            ),
        )
    if task_type == "generation" and get_path(data, "evaluation.judge") is None:
        yield "evaluation", "generation answers are scored by an LLM judge (G-Eval): add an evaluation.judge section"
    max_length = get_path(data, "student.max_length")
    if kind == "causal-lm" and isinstance(max_length, int) and max_length < CAUSAL_MIN_LENGTH:
        # The schema's default (64) suits an encoder reading one text; Axolotl silently drops longer rows.
        yield (
            "student.max_length",
            (
                f"a causal-LM student's max_length covers the whole conversation (instruction, "
                f"input and answer): {max_length} tokens would drop most rows; set it to at least "
                f"{CAUSAL_MIN_LENGTH} (typically 512-2048)"
            ),
        )


def _human_issues(data: Any) -> Issues:
    if get_path(data, "data.heldout_sets") and get_path(data, "task.type") not in (None, "classification"):
        yield "data.heldout_sets", "more held-out sets are evaluated for classification only, for now"
    if get_path(data, "data.human") is not None and get_path(data, "task.type") not in (None, "classification"):
        yield (
            "data.human",
            "human rows are classification labels for now: the task is " + str(get_path(data, "task.type")),
        )
    if get_path(data, "data.human") is not None and get_path(data, "student.kd.mode") == "logits":
        yield "data.human", "logit distillation trains on the teacher's own tokens, which a person's label has not"
    if get_path(data, "data.train_on") not in (None, "both") and get_path(data, "data.human") is None:
        yield "data.train_on", "chooses between the teacher's rows and human rows, but there is no data.human file"
    if get_path(data, "data.train_on") == "teacher" and get_path(data, "data.human_share") is not None:
        yield "data.human_share", "a share of human rows, but data.train_on: teacher trains on none"
    if get_path(data, "data.human_share") is not None and get_path(data, "data.human") is None:
        yield "data.human_share", "a share of human rows, but no data.human file of them"


def _seed_issues(data: Any, spec_dir: Path) -> Issues:
    """The seed section: a quota the task can have, and a generator that can write."""
    seed = get_path(data, "seed")
    if not isinstance(seed, dict):
        return
    classification = get_path(data, "task.type") == "classification"
    if seed.get("per_label") is not None and not classification:
        yield "seed.per_label", f"a quota per label, but the task is {get_path(data, 'task.type')}: use seed.count"
    elif seed.get("per_label") is None and seed.get("count") is None:
        yield "seed", "how many new inputs? Set seed.per_label (classification) or seed.count"
    elif seed.get("per_label") is not None and seed.get("count") is not None:
        yield "seed.count", "set one quota: seed.per_label or seed.count, not both"
    low, high = seed.get("min_chars", 8), seed.get("max_chars", 4000)  # the schema's defaults
    if low > high:
        yield "seed.min_chars", f"{low} is more than seed.max_chars ({high})"
    generator = seed.get("generator") or {}
    provider = generator.get("provider", get_path(data, "teacher.provider"))
    if generator.get("base_url") not in (None, get_path(data, "teacher.base_url")) and "api_key_env" not in generator:
        yield (
            "seed.generator",
            (
                "another endpoint than the teacher's: name its key (seed.generator.api_key_env), "
                "so the teacher's is never sent to it"
            ),
        )
    if provider == "pipeline":
        yield (
            "seed.generator",
            (
                "the teacher is another pipeline's student, which answers but cannot write "
                "inputs: name a generator (seed.generator.provider, model, ...)"
            ),
        )
    for name, (what, needs) in _PROVIDER_SECTIONS.items():
        own = generator.get(name) is not None
        inherited = provider == get_path(data, "teacher.provider") and get_path(data, f"teacher.{name}") is not None
        if provider == name and name != "pipeline" and not (own or inherited):
            yield "seed.generator", f"provider: {name} needs a seed.generator.{name} section {needs}"
        if provider != name and own:
            yield f"seed.generator.{name}", f"settings of {what}, but the generator's provider is {provider}"
    if provider == "llamacpp":
        yield from _model_file_issues(data, "seed.generator.llamacpp.model", spec_dir)


def _preference_issues(data: Any) -> Issues:
    """student.preference: DPO by Axolotl on a causal LM's classification answers."""
    if get_path(data, "student.preference") is None:
        return
    if get_path(data, "student.kind") != "causal-lm" or get_path(data, "student.trainer") != "axolotl":
        yield (
            "student.preference",
            "DPO trains a causal-LM student with Axolotl (student.kind: causal-lm, trainer: axolotl)",
        )
    elif get_path(data, "task.type") != "classification":
        yield "student.preference", "preference pairs are built for classification tasks for now"
    elif get_path(data, "student.kd.mode") == "logits":
        yield "student.preference", "DPO after logit distillation is not supported: use kd.mode labels"
    if get_path(data, "student.preference.judge") is not None and get_path(data, "filters.judge") is None:
        yield "student.preference.judge", "pairs are scored by filters.judge: set it (its endpoint and criteria)"


def _compare_with_issues(data: Any, spec_dir: Path, repo_root: Path) -> Issues:
    """evaluation.compare_with: a classification variant's predictions inside the repository (it
    may not be built yet: `dvc repro` builds it first, as a dependency)."""
    value = get_path(data, "evaluation.compare_with")
    key = "evaluation.compare_with"
    if isinstance(value, dict):  # {predictions, student}
        value, key = value.get("predictions"), "evaluation.compare_with.predictions"
    if not isinstance(value, str) or not value:
        return
    if get_path(data, "task.type") != "classification":
        yield key, "variants are compared row by row on classification tasks for now"
    elif Path(value).is_absolute() or not (spec_dir / value).resolve().is_relative_to(repo_root):
        yield key, f"'{value}' must be relative to the spec and inside the repository (a DVC dependency)"
    elif (spec_dir / value).resolve() == (spec_dir / "build/evaluate/predictions.json").resolve():
        yield key, "names this build's own predictions: name another variant's"


REASONING_MIN_TOKENS = 64  # a rationale of a few sentences and the answer line


def _teacher_reasoning_issues(data: Any) -> Issues:
    """teacher.reasoning: room for the rationale, a label to read off the answer line, and a
    stand-in that reasons when field mode expects it."""
    reasoning = get_path(data, "teacher.reasoning")
    if not isinstance(reasoning, dict):
        return
    if get_path(data, "task.type") != "classification":
        yield (
            "teacher.reasoning",
            "reasoning is recorded for classification tasks for now (an answer line holds a label)",
        )
    tokens = get_path(data, "teacher.max_tokens")
    mode = reasoning.get("mode")
    if mode == "explain":  # the answers are plain ones; the explanations have their own limit
        if isinstance(reasoning.get("max_tokens"), int) and reasoning["max_tokens"] < REASONING_MIN_TOKENS:
            yield "teacher.reasoning.max_tokens", f"leaves no room for an explanation: at least {REASONING_MIN_TOKENS}"
    elif not isinstance(tokens, int) or tokens < REASONING_MIN_TOKENS:
        yield (
            "teacher.max_tokens",
            (
                f"{tokens if tokens is not None else 'the default, 16,'} leaves no room for reasoning: "
                f"at least {REASONING_MIN_TOKENS} with teacher.reasoning"
            ),
        )
    elif "max_tokens" in reasoning:
        yield (
            "teacher.reasoning.max_tokens",
            f"explain mode's limit: in {mode} mode teacher.max_tokens holds the reasoning",
        )
    if reasoning.get("instruction") is not None and mode == "field":
        yield "teacher.reasoning.instruction", "field mode asks nothing: a reasoning model reasons on its own"
    if (
        reasoning.get("mode") == "field"
        and get_path(data, "teacher.provider") == "simulated"
        and not get_path(data, "teacher.simulated.reasoning")
    ):
        yield "teacher.simulated.reasoning", "field mode reads a reasoning model's field: set it true for the stand-in"


def _reasoning_issues(data: Any) -> Issues:
    """student.reasoning trains on the teacher's rationales: a causal LM, a teacher that gives
    them, a label to extract (classification, for now)."""
    yield from _teacher_reasoning_issues(data)
    mode = get_path(data, "student.reasoning")
    if mode in (None, "answer"):
        return
    if get_path(data, "student.kind") != "causal-lm":
        yield (
            "student.reasoning",
            f"{mode} trains a causal LM to write; student.kind is {get_path(data, 'student.kind')}",
        )
    elif get_path(data, "teacher.reasoning") is None:
        yield (
            "student.reasoning",
            f"{mode} trains on the teacher's rationales: set teacher.reasoning (mode: prompt, field or explain)",
        )
    elif get_path(data, "task.type") != "classification":
        yield "student.reasoning", "reasoning students are evaluated on classification tasks for now"
    elif get_path(data, "student.kd.mode") == "logits":
        yield "student.reasoning", "logit distillation trains on the teacher's answer tokens, not on a rationale"
    elif get_path(data, "data.human") is not None:
        yield "data.human", f"people's labels carry no rationale for a {mode} student to learn (and win dedup)"
    elif mode == "step_by_step" and get_path(data, "export") is not None:
        yield (
            "export",
            (
                "a step_by_step student is asked with a `[label] ` prefix the exported file's chat template "
                "does not add: serve it with `distill serve`, or train it with reasoning: answer or trace"
            ),
        )


def _export_issues(data: Any) -> Issues:
    task_type = get_path(data, "task.type")
    if get_path(data, "route") is not None and task_type not in (None, "classification"):
        yield "route", f"routing reads the student's confidence in a label: classification only, not {task_type}"
    kind, fmt = get_path(data, "student.kind"), get_path(data, "export.format")
    if fmt == "onnx" and kind not in (None, "encoder-classifier"):
        yield (
            "export.format",
            (f"onnx export is built for encoder-classifier students; a {kind} student exports as gguf"),
        )
    if fmt == "gguf" and kind not in (None, "causal-lm"):
        yield "export.format", f"gguf export is built for causal-lm students; a {kind} student exports as onnx"
    if fmt == "gguf" and task_type not in (None, "classification"):
        yield (
            "export.format",
            (
                f"gguf export checks the exported model's labels against the student's: classification "
                f"only for now, not {task_type} (the adapter in build/model serves with vLLM)"
            ),
        )
    quantize = get_path(data, "export.quantize")
    if fmt in QUANTIZE_BY_FORMAT and quantize is not None and quantize not in QUANTIZE_BY_FORMAT[fmt]:
        yield (
            "export.quantize",
            (f"{quantize!r} is not a {fmt} type; {fmt} quantizes to {', '.join(QUANTIZE_BY_FORMAT[fmt])}"),
        )


def _extractor_issues(data: Any, task_type: Any, trainer: Any) -> Issues:
    """An encoder-extractor student: an extraction task, the local trainer, a schema it can answer."""
    if task_type not in (None, "extraction"):
        yield "student.kind", f"an encoder-extractor student needs task.type extraction, not {task_type}"
    if trainer not in (None, "local"):
        yield "student.trainer", "encoder-extractor students train with trainer: local"
    schema = get_path(data, "task.output_schema")
    if task_type == "extraction" and isinstance(schema, dict):
        try:
            schema_fields(schema)
        except UnsupportedSchema as exc:
            yield "task.output_schema", f"{exc} (student.kind: encoder-extractor)"


# Providers configured in a section of their own (teacher.<provider>): what the section must say.
_PROVIDER_SECTIONS = {
    "simulated": ("the simulated teacher", "(answers, accuracy, ...)"),
    "llamacpp": ("a llama.cpp teacher", "naming the GGUF model"),
    "pipeline": ("a pipeline teacher", "naming the other pipeline's spec"),
}


def _model_file_issues(data: Any, dotted: str, spec_dir: Path) -> Issues:
    """A GGUF named at `dotted` (a path or package:NAME/FILE) that cannot be found."""
    if isinstance(get_path(data, dotted), str):
        try:
            resolve_model_file(get_path(data, dotted), spec_dir)
        except FileNotFoundError as exc:
            yield dotted, str(exc)


def _teacher_issues(data: Any, spec_dir: Path) -> Issues:
    provider = get_path(data, "teacher.provider")
    for name, (what, needs) in _PROVIDER_SECTIONS.items():
        present = get_path(data, f"teacher.{name}") is not None
        if provider == name and not present:
            yield "teacher", f"provider: {name} needs a teacher.{name} section {needs}"
        if provider != name and present:
            yield f"teacher.{name}", f"settings of {what}, but provider is {provider}"
    if provider == "llamacpp":
        yield from _model_file_issues(data, "teacher.llamacpp.model", spec_dir)
    if provider == "pipeline" and isinstance(get_path(data, "teacher.pipeline.path"), str):
        yield from _pipeline_teacher_issues(data, spec_dir)


def _pipeline_teacher_issues(data: Any, spec_dir: Path) -> Issues:
    """The other pipeline exists, is not this one, and answers with this task's labels."""
    import yaml  # the other spec is only read for its task here; it is validated when it is served

    try:
        upstream = resolve_pipeline_spec(get_path(data, "teacher.pipeline.path"), spec_dir)
    except FileNotFoundError as exc:
        yield "teacher.pipeline.path", str(exc)
        return
    if upstream.parent == spec_dir.resolve():  # specs in one directory share its build/
        yield (
            "teacher.pipeline.path",
            "names a spec in this pipeline's own directory: a student cannot be its own teacher",
        )
        return
    try:
        task = (yaml.safe_load(upstream.read_text(encoding="utf-8")) or {}).get("task") or {}
    except (OSError, yaml.YAMLError) as exc:
        yield "teacher.pipeline.path", f"cannot read {upstream}: {exc}"
        return
    if task.get("type") != "classification" or get_path(data, "task.type") != "classification":
        yield "teacher.pipeline", "a pipeline teacher serves a classifier: both tasks must be classification"
    elif sorted(task.get("labels") or []) != sorted(get_path(data, "task.labels") or []):
        yield (
            "teacher.pipeline.path",
            (
                f"{upstream} answers with labels {task.get('labels')}, this task has "
                f"{get_path(data, 'task.labels')}: a teacher must answer with this task's labels"
            ),
        )


def _filter_rule_issues(data: Any) -> Issues:
    scrub = get_path(data, "data.scrub.patterns")
    patterns = {
        f"data.scrub.patterns[{i}].regex": rule.get("regex")
        for i, rule in enumerate(scrub if isinstance(scrub, list) else [])
        if isinstance(rule, dict)
    }
    patterns.update({key: get_path(data, key) for key in ("filters.rules.must_match", "filters.rules.must_not_match")})
    for key, pattern in patterns.items():
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error as exc:
                yield key, f"not a valid regular expression: {exc}"
    lo, hi = get_path(data, "filters.rules.min_chars"), get_path(data, "filters.rules.max_chars")
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        yield "filters.rules", f"min_chars {lo} is above max_chars {hi}: every answer would be dropped"


def _teacher_signal_issues(data: Any) -> Issues:
    """What the filters and soft-label distillation need from the teacher: varied samples, logprobs."""
    samples = get_path(data, "teacher.samples")
    if isinstance(samples, int) and samples > 1 and not get_path(data, "teacher.temperature"):
        yield "teacher.samples", "self-consistency needs varied answers: set teacher.temperature above 0"
    min_agreement = get_path(data, "filters.min_agreement")
    if isinstance(min_agreement, (int, float)) and min_agreement > 0 and not (isinstance(samples, int) and samples > 1):
        yield "filters.min_agreement", "agreement needs several answers per prompt: set teacher.samples >= 2"

    top_logprobs = get_path(data, "teacher.top_logprobs")
    min_conf = get_path(data, "filters.min_confidence")
    if top_logprobs == 0 and isinstance(min_conf, (int, float)) and min_conf > 0:
        yield "filters.min_confidence", "needs the teacher's logprobs; set teacher.top_logprobs >= 1"
    alpha = get_path(data, "student.kd.alpha")
    if top_logprobs == 0 and isinstance(alpha, (int, float)) and alpha > 0:
        yield (
            "student.kd.alpha",
            ("soft-label distillation needs the teacher's logprobs; set teacher.top_logprobs >= 1 or kd.alpha: 0"),
        )


def _simulated_token_ids_issues(data: Any) -> Issues:
    if (
        get_path(data, "teacher.token_ids")
        and get_path(data, "teacher.provider") == "simulated"
        and not get_path(data, "teacher.tokenizer")
        and not logit_kd_requested(data)
    ):  # else vocabulary_issues says it
        yield (
            "teacher.token_ids",
            "the simulated teacher returns token ids of teacher.tokenizer: name a tokenizer directory",
        )


def _gate_issues(data: Any) -> Issues:
    """Gates name metrics the task computes, intervals only where there are some, bounds that can hold."""
    gates, task_type = get_path(data, "gates"), get_path(data, "task.type")
    if not (isinstance(gates, dict) and task_type in METRICS_BY_TASK):
        return
    computed = list(METRICS_BY_TASK[task_type]) + (list(ROUTE_METRICS) if get_path(data, "route") is not None else [])
    sets = get_path(data, "data.heldout_sets")
    computed += [f"{m}@{name}" for name in (sets if isinstance(sets, dict) else {}) for m in HELDOUT_SET_METRICS]
    computed += list(PREFERENCE_METRICS) if get_path(data, "student.preference") is not None else []
    computed += list(COMPARED_METRICS) if get_path(data, "evaluation.compare_with") is not None else []
    for name, bound in gates.items():
        gate_path = join_path("gates", name)
        if name not in computed:
            yield (
                gate_path,
                (
                    f"gate on '{name}', a metric that is never computed for {task_type} tasks"
                    f"{did_you_mean(name, computed)} (computed: {', '.join(computed)})"
                ),
            )
        elif not isinstance(bound, dict):
            continue
        elif GATE_FIGURE_KEY in bound and GATE_FIGURE_OLD_KEY in bound:
            yield (
                join_path(gate_path, GATE_FIGURE_OLD_KEY),
                (f"both `{GATE_FIGURE_KEY}` and its old name `{GATE_FIGURE_OLD_KEY}`: keep `{GATE_FIGURE_KEY}`"),
            )
        elif gate_figure(bound) != "value" and name not in WITH_INTERVALS and not name.startswith("accuracy@"):
            key = GATE_FIGURE_KEY if GATE_FIGURE_KEY in bound else GATE_FIGURE_OLD_KEY
            yield join_path(gate_path, key), f"{name} has no bootstrap interval (only {', '.join(WITH_INTERVALS)} do)"
        else:
            yield from _bound_range_issues(name, gate_path, bound)


def _bound_range_issues(name: str, gate_path: str, bound: dict) -> Issues:
    """Bounds the metric can meet: inside its range, min not above max."""
    low, high = metric_range(name)
    span = f"[{low:g}, {high:g}]" if high != float("inf") else f"at least {low:g}"
    for key in ("min", "max"):
        value = bound.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not low <= value <= high:
            yield (
                join_path(gate_path, key),
                (
                    f"{name} is {span}: a {key} of {value:g} "
                    f"{'can never hold' if (key == 'min') == (value > high) else 'always holds'}"
                ),
            )
    lo, hi = bound.get("min"), bound.get("max")
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
        yield gate_path, f"min {lo} is above max {hi}: the gate can never hold"


def _judge_issues(data: Any) -> Issues:
    """LLM judges (filters.judge, evaluation.judge): what G-Eval scores by, and the stand-in's settings."""
    for where in ("filters.judge", "evaluation.judge"):
        judge = get_path(data, where)
        if not isinstance(judge, dict):
            continue
        if not judge.get("criteria") and not judge.get("evaluation_steps"):
            yield where, "a judge needs criteria or evaluation_steps (what G-Eval scores the answers by)"
        if judge.get("provider") == "simulated" and judge.get("simulated") is None:
            yield where, "provider: simulated needs a simulated section (answers, accuracy, ...)"
        if judge.get("provider") == "openai" and judge.get("simulated") is not None:
            yield join_path(where, "simulated"), "settings of the simulated judge, but provider is openai"


# Optimizers whose 8-bit state breaks under FSDP2 (Axolotl refuses adamw_bnb_8bit there).
_BNB_8BIT = ("adamw_bnb_8bit", "paged_adamw_8bit")


def axolotl_issues(data: Any) -> list[tuple[str, str]]:
    """(key path, message) for student settings of the Axolotl trainer that cannot work together.
    Reads the spec as written (before defaults), so a key is refused only where the user set it."""
    student = get_path(data, "student")
    if not isinstance(student, dict):
        return []
    issues: list[tuple[str, str]] = []
    if student.get("trainer") != "axolotl":
        for key in ("adapter", "device", "gpu", "distributed", "axolotl"):
            if key in student:
                issues.append(
                    (
                        f"student.{key}",
                        f"applies to trainer: axolotl (causal-lm students), not trainer: {student.get('trainer')}",
                    )
                )
        return issues
    dist = student.get("distributed") if isinstance(student.get("distributed"), dict) else {}
    gpu = student.get("gpu") if isinstance(student.get("gpu"), dict) else {}
    strategy, launcher = dist.get("strategy", "none"), dist.get("launcher", "accelerate")
    stage = dist.get("zero_stage", 2)
    if "zero_stage" in dist and strategy != "deepspeed":
        issues.append(
            (
                "student.distributed.zero_stage",
                f"a DeepSpeed setting, but strategy is {strategy}: set strategy: deepspeed or drop zero_stage",
            )
        )
    if dist.get("offload") is True:
        if strategy == "none":
            issues.append(
                ("student.distributed.offload", "CPU offload needs strategy: deepspeed (ZeRO-2 or 3) or fsdp")
            )
        elif strategy == "deepspeed" and stage == 1:
            issues.append(("student.distributed.offload", "DeepSpeed offloads from ZeRO-2 on: set zero_stage: 2 or 3"))
    if "workers" in dist and launcher != "ray":
        issues.append(
            (
                "student.distributed.workers",
                "workers counts Ray workers: set launcher: ray (accelerate uses every GPU of the machine)",
            )
        )
    if student.get("device") == "cpu" and (strategy != "none" or launcher != "accelerate"):
        issues.append(
            (
                "student.device",
                f"device: cpu trains in one process; distributed training "
                f"(strategy {strategy}, launcher {launcher}) needs GPUs",
            )
        )
    if strategy == "fsdp" and gpu.get("optimizer") in _BNB_8BIT:
        issues.append(
            (
                "student.gpu.optimizer",
                f"FSDP2 cannot shard {gpu['optimizer']}'s 8-bit state (Axolotl refuses "
                "it): use adamw_torch_fused, adamw_torch_8bit or optimizer: auto",
            )
        )
    if student.get("adapter") == "full" and "lora" in student:
        issues.append(
            (
                "student.lora",
                "LoRA settings, but adapter is full (every weight trains): "
                "drop student.lora or set adapter: lora or qlora",
            )
        )
    return issues
