"""Semantic checks of the endpoints that answer and write: the teacher's provider and its
section, a pipeline teacher, the seed generator, the teacher's reasoning."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from distillbuild.spec.model import Generator, Seed, SpecModel, Teacher, thaw
from distillbuild.spec.model_files import resolve_model_file, resolve_pipeline_spec
from distillbuild.spec.vocabulary import logit_kd_requested
from distillbuild.spec.written import as_written, schema_default

Issues = Iterator[tuple[str, str]]  # (key path, message)

# Providers configured in a section of their own (teacher.<provider>): what the section must say.
PROVIDER_SECTIONS = {
    "simulated": ("the simulated teacher", "(answers, accuracy, ...)"),
    "llamacpp": ("a llama.cpp teacher", "naming the GGUF model"),
    "pipeline": ("a pipeline teacher", "naming the other pipeline's spec"),
    "vllm": ("vLLM engine replicas", "(replicas, tensor_parallel_size, ...)"),
}

REASONING_MIN_TOKENS = 64  # a rationale of a few sentences and the answer line


def provider_sections(endpoint: Teacher | Generator) -> dict[str, Any]:
    """The provider sections an endpoint holds, by provider (a generator has no pipeline one)."""
    sections = {"simulated": endpoint.simulated, "llamacpp": endpoint.llamacpp}
    if isinstance(endpoint, Teacher):
        sections["pipeline"] = endpoint.pipeline
        sections["vllm"] = endpoint.vllm
    return sections


def model_file_issues(where: str, value: Any, spec_dir: Path) -> Issues:
    """A GGUF named at `where` (a path or package:NAME/FILE) that cannot be found."""
    if isinstance(value, str):
        try:
            resolve_model_file(value, spec_dir)
        except FileNotFoundError as exc:
            yield where, str(exc)


def teacher_issues(spec: SpecModel, spec_dir: Path) -> Issues:
    teacher = spec.teacher
    sections = provider_sections(teacher)
    for name, (what, needs) in PROVIDER_SECTIONS.items():
        present = sections[name] is not None
        if teacher.provider == name and not present:
            yield "teacher", f"provider: {name} needs a teacher.{name} section {needs}"
        if teacher.provider != name and present:
            yield f"teacher.{name}", f"settings of {what}, but provider is {teacher.provider}"
    if teacher.provider == "llamacpp" and teacher.llamacpp is not None:
        yield from model_file_issues("teacher.llamacpp.model", teacher.llamacpp.model, spec_dir)
    if teacher.provider == "pipeline" and teacher.pipeline is not None and isinstance(teacher.pipeline.path, str):
        yield from _pipeline_teacher_issues(spec, spec_dir)


def _pipeline_teacher_issues(spec: SpecModel, spec_dir: Path) -> Issues:
    """The other pipeline exists, is not this one, and answers with this task's labels."""
    import yaml  # the other spec is only read for its task here; it is validated when it is served

    try:
        upstream = resolve_pipeline_spec(spec.teacher.pipeline.path, spec_dir)
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
        task = as_written(yaml.safe_load(upstream.read_text(encoding="utf-8"))).task
    except (OSError, yaml.YAMLError) as exc:
        yield "teacher.pipeline.path", f"cannot read {upstream}: {exc}"
        return
    if task.type != "classification" or spec.task.type != "classification":
        yield "teacher.pipeline", "a pipeline teacher serves a classifier: both tasks must be classification"
    elif sorted(task.labels or []) != sorted(spec.task.labels or []):
        yield (
            "teacher.pipeline.path",
            (
                f"{upstream} answers with labels {thaw(task.labels)}, this task has "
                f"{thaw(spec.task.labels)}: a teacher must answer with this task's labels"
            ),
        )


def seed_issues(spec: SpecModel, spec_dir: Path) -> Issues:
    """The seed section: a quota the task can have, and a generator that can write."""
    seed = spec.seed
    if seed is None:
        return
    if seed.per_label is not None and spec.task.type != "classification":
        yield "seed.per_label", f"a quota per label, but the task is {spec.task.type}: use seed.count"
    elif seed.per_label is None and seed.count is None:
        yield "seed", "how many new inputs? Set seed.per_label (classification) or seed.count"
    elif seed.per_label is not None and seed.count is not None:
        yield "seed.count", "set one quota: seed.per_label or seed.count, not both"
    low = seed.min_chars if seed.min_chars is not None else schema_default(Seed, "min_chars")
    high = seed.max_chars if seed.max_chars is not None else schema_default(Seed, "max_chars")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        yield "seed.min_chars", f"{low} is more than seed.max_chars ({high})"
    yield from _generator_issues(spec, seed.generator, spec_dir)


def _generator_issues(spec: SpecModel, generator: Generator | None, spec_dir: Path) -> Issues:
    """The generator: its own key for its own endpoint, a provider that can write, the
    provider's section (its own, or the teacher's when it is the teacher's provider)."""
    teacher = spec.teacher
    provider = generator.provider if generator is not None and generator.provider is not None else teacher.provider
    if generator is not None and generator.base_url not in (None, teacher.base_url) and generator.api_key_env is None:
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
    if provider == "vllm":
        yield (
            "seed.generator",
            (
                "vLLM engine replicas answer the teacher stage's calls on Ray; the seed stage "
                "writes inputs through an endpoint: name a generator (seed.generator.provider: "
                "openai and its base_url, a `vllm serve` of the same model say)"
            ),
        )
    own_sections = provider_sections(generator) if generator is not None else {}
    teacher_sections = provider_sections(teacher)
    for name, (what, needs) in PROVIDER_SECTIONS.items():
        own = own_sections.get(name) is not None
        inherited = provider == teacher.provider and teacher_sections[name] is not None
        if provider == name and name not in ("pipeline", "vllm") and not (own or inherited):
            yield "seed.generator", f"provider: {name} needs a seed.generator.{name} section {needs}"
        if provider != name and own:
            yield f"seed.generator.{name}", f"settings of {what}, but the generator's provider is {provider}"
    if provider == "llamacpp" and generator is not None and generator.llamacpp is not None:
        yield from model_file_issues("seed.generator.llamacpp.model", generator.llamacpp.model, spec_dir)


def teacher_reasoning_issues(spec: SpecModel) -> Issues:
    """teacher.reasoning: room for the rationale, a label to read off the answer line, and a
    stand-in that reasons when field mode expects it."""
    teacher = spec.teacher
    reasoning = teacher.reasoning
    if reasoning is None:
        return
    if spec.task.type != "classification":
        yield (
            "teacher.reasoning",
            "reasoning is recorded for classification tasks for now (an answer line holds a label)",
        )
    tokens, mode = teacher.max_tokens, reasoning.mode
    if mode == "explain":  # the answers are plain ones; the explanations have their own limit
        if isinstance(reasoning.max_tokens, int) and reasoning.max_tokens < REASONING_MIN_TOKENS:
            yield "teacher.reasoning.max_tokens", f"leaves no room for an explanation: at least {REASONING_MIN_TOKENS}"
    elif not isinstance(tokens, int) or tokens < REASONING_MIN_TOKENS:
        yield (
            "teacher.max_tokens",
            (
                f"{tokens if tokens is not None else 'the default, 16,'} leaves no room for reasoning: "
                f"at least {REASONING_MIN_TOKENS} with teacher.reasoning"
            ),
        )
    elif reasoning.max_tokens is not None:
        yield (
            "teacher.reasoning.max_tokens",
            f"explain mode's limit: in {mode} mode teacher.max_tokens holds the reasoning",
        )
    if reasoning.instruction is not None and mode == "field":
        yield "teacher.reasoning.instruction", "field mode asks nothing: a reasoning model reasons on its own"
    simulated_reasons = teacher.simulated is not None and teacher.simulated.reasoning
    if mode == "field" and teacher.provider == "simulated" and not simulated_reasons:
        yield "teacher.simulated.reasoning", "field mode reads a reasoning model's field: set it true for the stand-in"


def simulated_token_ids_issues(spec: SpecModel) -> Issues:
    teacher = spec.teacher
    if (
        teacher.token_ids and teacher.provider == "simulated" and not teacher.tokenizer and not logit_kd_requested(spec)
    ):  # else vocabulary_issues says it
        yield (
            "teacher.token_ids",
            "the simulated teacher returns token ids of teacher.tokenizer: name a tokenizer directory",
        )
