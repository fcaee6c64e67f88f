"""The model card (Markdown, Hugging Face style): what the model is, where it came from, how it
scored, and what the teacher's terms say, side by side for an auditor."""

from __future__ import annotations

from typing import Any

import yaml

from distillbuild.pipeline.lineage import teacher_chain
from distillbuild.spec import Spec

_HEADLINE = (
    "accuracy",
    "teacher_accuracy",
    "field_accuracy",
    "teacher_field_accuracy",
    "exact_match",
    "teacher_exact_match",
    "schema_valid_rate",
    "geval_mean",
    "teacher_geval_mean",
    "geval_pass_rate",
    "retention",
    "macro_f1",
    "agreement",
    "latency_p50_ms",
    "latency_p95_ms",
    "heldout_rows",
)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _observed(gate: dict[str, Any]) -> str:
    return "measured on the build machine" if gate.get("measured") else _fmt(gate["observed"])


def model_card(spec: Spec, metrics: dict[str, Any], gates: list[dict[str, Any]], lineage: dict[str, Any]) -> str:
    teacher, task = lineage["teacher"], spec.task
    front = {
        "library_name": "transformers",
        "base_model": spec.student.base_model,
        "pipeline_tag": "text-classification" if task.type == "classification" else "text-generation",
        "tags": ["distillbuild", "distillation", task.type],
        "model_name": spec.registry_name,
    }
    who = f"{teacher['provider']}:{teacher['model']}"
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).strip(),
        "---",
        "",
        f"# {front['model_name']}",
        "",
        f"A student model ({spec.student.kind}) distilled by distillbuild from the teacher `{who}` for one task:",
        "",
        f"> {task.instruction.strip()}",
        "",
    ]
    if teacher["simulated"]:
        lines += [
            "**The teacher was the simulated stand-in** (an offline server answering from an answer key), "
            "not a real model: these numbers test the pipeline, not a provider.",
            "",
        ]
    if task.labels:
        lines += [f"Labels: {', '.join(f'`{l}`' for l in task.labels)}.", ""]
    lines += [
        "## Evaluation",
        "",
        f"On {_fmt(metrics.get('heldout_rows'))} gold-labelled held-out rows, never trained on; "
        "student and teacher on the same rows.",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {_fmt(metrics.get(name))} |" for name in _HEADLINE if name in metrics]
    lines += ["", "## Gates", "", "| gate | required | observed | verdict |", "| --- | --- | --- | --- |"]
    lines += [f"| {g['gate']} | {g['required']} | {_observed(g)} | {'pass' if g['pass'] else 'FAIL'} |" for g in gates]
    if any(g.get("measured") for g in gates):
        lines += [
            "",
            "Latency and what follows from it are measured by the machine that runs the build, not recorded "
            "here: a rebuild elsewhere measures its own (`distill summary`).",
        ]
    terms = teacher.get("terms") or "not stated in the spec (teacher.terms): check the provider's terms before shipping"
    lines += [
        "",
        "## Teacher and terms",
        "",
        f"- Teacher: `{who}`" + (f" at `{teacher['base_url']}`" if teacher.get("base_url") else ""),
        *(
            [
                "- Progressive distillation, teacher to student: "
                f"{' -> '.join(f'`{t}`' for t in teacher_chain(teacher))}"
                " -> this student"
            ]
            if teacher.get("pipeline")
            else []
        ),
        f"- System fingerprints seen: {', '.join(teacher['system_fingerprints']) or '-'}",
        f"- Terms: {terms}",
        "",
        "## Lineage",
        "",
        f"- Spec: `{lineage['spec']}` sha256 `{lineage['spec_sha256']}`",
        f"- Git revision: `{lineage['git_revision'] or '-'}`"
        + (" (with uncommitted changes)" if lineage["git_dirty"] else ""),
    ]
    lines += [f"- Data `{k}`: sha256 `{v}`" for k, v in lineage["data_sha256"].items()]
    lines += [
        f"- Teacher answers: sha256 `{teacher['answers_sha256']}` (held-out: `{teacher['heldout_answers_sha256']}`)",
        f"- Training set: sha256 `{lineage['dataset_sha256']}`",
        f"- Model files: sha256 `{lineage['model_sha256']}`",
        f"- Metrics: sha256 `{lineage['metrics_sha256']}`",
        "",
        "Rebuild it with `distill reproduce <tag>` or `git checkout <tag> && dvc repro`.",
        "",
    ]
    return "\n".join(lines)
