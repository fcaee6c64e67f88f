"""A stage's teacher or judge endpoint: the stand-in started, or a real one's API key read from
the environment; the repository's teacher cache opened beside it.

Shared by the teacher stage (`teacher`), the filter stage (`filters.judge`) and the evaluate
stage (`evaluation.judge`). Engines get the resulting settings and cache; they start nothing.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, Sequence

from distillbuild.console import log as console_log
from distillbuild.endpoints import llamacpp, pipeline_teacher, standin
from distillbuild.errors import StageError
from distillbuild.llm.cache import TeacherCache
from distillbuild.llm.judge import judge_settings
from distillbuild.llm.settings import TeacherSettings
from distillbuild.spec.model import Endpoint, Judge
from distillbuild.spec.model_files import resolve_model_file, resolve_pipeline_spec

DEFAULT_BASE_URL = "https://api.openai.com/v1"

# (base_url, endpoint_id, api_key) -> the settings of the section being opened
SettingsFor = Callable[[str | None, str, str], TeacherSettings]


def endpoint_id(section: Endpoint, base_dir: Path, kind: str) -> str:
    """The endpoint's identity in cache keys: the stand-in's, a local model's (its file's hash),
    or the real endpoint's base URL."""
    if section.provider == "simulated":
        return standin.endpoint_id(section, base_dir, kind=kind)
    if section.provider == "llamacpp":
        return llamacpp.endpoint_id(_model_file(section, base_dir), section.llamacpp.chat_format)
    if section.provider == "pipeline":
        upstream = upstream_spec(section, base_dir)
        return pipeline_teacher.endpoint_id(upstream.registry_name, upstream.dir)
    if section.provider == "vllm":
        return f"vllm:{section.model}"
    return section.base_url or DEFAULT_BASE_URL


def upstream_spec(section: Endpoint, base_dir: Path):
    """The teacher pipeline's spec (teacher.provider: pipeline), loaded and validated."""
    from distillbuild.spec import load_spec  # the other pipeline's spec, validated as its own build would

    return load_spec(resolve_pipeline_spec(section.pipeline.path, base_dir))


def _start_pipeline(section: Endpoint, base_dir: Path, stack: ExitStack, log: Callable[[str], None]):
    """`distill serve` for the teacher pipeline's student, stopped when `stack` closes."""
    upstream, settings = upstream_spec(section, base_dir), section.pipeline
    if settings.version:
        pipeline_teacher.check_version(upstream.dir, settings.version)
    log(
        f"teacher: starting `distill serve` for the pipeline {upstream.registry_name} ({upstream.path})"
        + (f" at {settings.version}" if settings.version else "")
    )
    server = stack.enter_context(
        pipeline_teacher.PipelineServer(
            upstream.path,
            startup_timeout_s=settings.startup_timeout_s,
            endpoint_id=pipeline_teacher.endpoint_id(upstream.registry_name, upstream.dir),
        )
    )
    log(f"teacher: the student of {upstream.registry_name} on {server.base_url}")
    return server


def _model_file(section: Endpoint, base_dir: Path) -> Path:
    try:
        return resolve_model_file(section.llamacpp.model, base_dir)
    except FileNotFoundError as exc:
        raise StageError(f"teacher.llamacpp.model: {exc}") from None


def _start_llamacpp(section: Endpoint, base_dir: Path, stack: ExitStack, log: Callable[[str], None]):
    """The local llama.cpp server for the section's GGUF, stopped when `stack` closes; if it dies
    while the stage uses it, the stage stops with exit 3 (what was answered is cached)."""
    model_file, local = _model_file(section, base_dir), section.llamacpp
    log(
        f"teacher: starting llama.cpp for {model_file.name} (n_ctx {local.n_ctx}, {local.threads} threads"
        + (f", chat format {local.chat_format})" if local.chat_format else ")")
    )
    if (
        local.chat_format is None
        and getattr(section, "api", "chat") == "chat"
        and llamacpp.has_chat_template(model_file) is False
    ):
        log(
            f"teacher: WARNING: {model_file.name} carries no chat template: llama.cpp will wrap the messages in the "
            "Llama-2 `[INST] <<SYS>>` format, which a model of another family was never trained on. Set "
            "teacher.llamacpp.chat_format (chatml, gemma, ...) or teacher.api: completions"
        )
    server = stack.enter_context(
        llamacpp.LlamaCppServer(
            model_file,
            section.model,
            n_ctx=local.n_ctx,
            threads=local.threads,
            startup_timeout_s=local.startup_timeout_s,
            chat_format=local.chat_format,
            endpoint_id=llamacpp.endpoint_id(model_file, local.chat_format),
        )
    )
    log(f"teacher: llama.cpp ({section.model}) on {server.base_url}")
    return server


@contextmanager
def open_endpoint(
    section: Endpoint,
    base_dir: Path,
    repo_root: Path,
    *,
    kind: str,
    where: str,
    settings_for: SettingsFor,
    labels: Sequence[str] = (),
    log: Callable[[str], None] = console_log,
) -> Iterator[tuple[TeacherSettings, TeacherCache]]:
    """(settings, cache) while the endpoint of `section` (the spec's `where`) is open."""
    with ExitStack() as stack:
        if section.provider == "simulated":
            endpoint = stack.enter_context(standin.start_endpoint(section, base_dir, kind=kind, labels=labels))
            settings = settings_for(endpoint.base_url, endpoint.endpoint_id, "simulated")
            log(f"{kind}: SIMULATED stand-in ({section.model}) on {endpoint.base_url}")
        elif section.provider in ("llamacpp", "pipeline"):
            start = _start_llamacpp if section.provider == "llamacpp" else _start_pipeline
            server = start(section, base_dir, stack, log)
            settings = settings_for(server.base_url, server.endpoint_id, "local")
        elif section.provider == "vllm":  # no endpoint: engine replicas on the stage's Ray cluster
            settings = replace(settings_for(None, endpoint_id(section, base_dir, kind), ""), vllm=section.vllm)
            log(f"{kind}: {section.model} in vLLM engine replicas on the Ray cluster")
        else:
            env = section.api_key_env
            api_key = os.environ.get(env, "")
            if not api_key:
                raise StageError(f"the {kind}'s API key is not set: export {env}=... ({where}.api_key_env)")
            settings = settings_for(section.base_url, endpoint_id(section, base_dir, kind), api_key)
        cache = TeacherCache.for_repo(repo_root)
        stack.callback(cache.close)
        yield settings, cache
        if section.provider in ("llamacpp", "pipeline") and not server.alive():
            raise StageError(
                f"{server.what} stopped during the run (exit code {server.process.returncode}): "
                f"{server.output_tail()}. The answers it gave are cached: rerun to ask for the rest."
            )


def open_judge(section: Judge, base_dir: Path, repo_root: Path, where: str, log: Callable[[str], None] = console_log):
    """`open_endpoint` for a judge section (filters.judge, evaluation.judge)."""
    return open_endpoint(
        section, base_dir, repo_root, kind="judge", where=where, settings_for=partial(judge_settings, section), log=log
    )
