"""Does the teacher share the student's vocabulary? Logit distillation needs it.

Token-level KD compares the teacher's and the student's distributions over the same token ids;
with different tokenizers the ids mean different strings and the loss teaches noise. The check
compares the tokenizers' vocabularies when both are local directories, and otherwise the model
families known to share one vocabulary. An unknown pair is refused, not guessed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from distillbuild.spec.model import SpecModel

# Families whose sizes share one tokenizer (Llama 3.x: 128,256 tokens; Qwen2.5: 151,643 + specials).
FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Llama 3", re.compile(r"llama-?3(\.\d)?\b|llama-?3[-_.]", re.I)),
    ("Llama 2", re.compile(r"llama-?2\b|llama-?2[-_.]", re.I)),
    ("Qwen2.5", re.compile(r"qwen2\.5", re.I)),
    ("Qwen3", re.compile(r"qwen3", re.I)),
    ("Gemma 2", re.compile(r"gemma-?2", re.I)),
    ("Gemma 3", re.compile(r"gemma-?3", re.I)),
    ("Mistral", re.compile(r"mistral|mixtral", re.I)),
)
# Models behind OpenAI's API: their logprobs never carry token ids.
OPENAI_HOSTED = re.compile(r"^(gpt-|o\d|chatgpt|davinci|babbage)", re.I)


def logit_kd_requested(spec: SpecModel) -> bool:
    return spec.student.kd.mode == "logits"


def family(name: str) -> str | None:
    for label, pattern in FAMILIES:
        if pattern.search(name):
            return label
    return None


def _local_dir(value: str, spec_dir: Path) -> Path | None:
    try:
        path = (spec_dir / value).resolve()
        return path if path.is_dir() else None
    except (OSError, ValueError):
        return None


def local_vocabulary(path: Path) -> dict[str, int] | None:
    """The token -> id map of a tokenizer directory (tokenizer.json, or vocab.json), if readable."""
    try:
        if (path / "tokenizer.json").is_file():
            doc = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
            vocab = dict((doc.get("model") or {}).get("vocab") or {})
            for added in doc.get("added_tokens") or []:
                vocab[added["content"]] = added["id"]
            return vocab or None
        if (path / "vocab.json").is_file():
            return json.loads((path / "vocab.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def vocabulary_issues(spec: SpecModel, spec_dir: Path) -> list[tuple[str, str]]:
    """(key path, message) for each reason logit distillation cannot work with this spec."""
    if not logit_kd_requested(spec):
        return []
    student = spec.student.base_model or ""
    if spec.student.kind != "causal-lm":
        return [
            (
                "student.kd.mode",
                "logit distillation trains causal-lm students on the teacher's tokens; "
                "an encoder-classifier distils the teacher's soft labels (kd.alpha) instead",
            )
        ]
    provider, model = spec.teacher.provider, spec.teacher.model or ""
    if provider == "openai" and OPENAI_HOSTED.match(model):  # OpenAI's own or Azure's deployment of it
        return [_hosted_teacher_issue(model, student)]
    issues = _setting_issues(spec)
    tokenizer = spec.teacher.tokenizer
    if not tokenizer and provider == "simulated":
        issues.append(
            (
                "teacher.tokenizer",
                "the simulated teacher needs a tokenizer to return token ids: name the student's tokenizer directory",
            )
        )
        return issues
    teacher_tok = tokenizer or model  # vLLM serves a model under its hub id
    key = "teacher.tokenizer" if tokenizer else "teacher.model"
    t_dir, s_dir = _local_dir(teacher_tok, spec_dir), _local_dir(student, spec_dir)
    if t_dir and s_dir:
        mismatch = _local_mismatch(t_dir, s_dir, teacher_tok, student)
    else:
        mismatch = _family_mismatch(teacher_tok, student)
    return issues + ([(key, mismatch)] if mismatch else [])


def _hosted_teacher_issue(model: str, student: str) -> tuple[str, str]:
    return (
        "teacher.model",
        f"logit distillation needs a teacher that shares the student's vocabulary: "
        f"{model}'s tokens are not {family(student) or 'the student'}'s, and OpenAI's API "
        f"returns no token ids. Serve a teacher of the student's family with vLLM (for example "
        f"Llama 3.1 70B for a Llama 3.1 8B student: teacher.base_url, teacher.token_ids: true), "
        f"or set student.kd.mode: labels",
    )


def _setting_issues(spec: SpecModel) -> list[tuple[str, str]]:
    """The student and teacher settings logit distillation needs, whatever the two models."""
    issues: list[tuple[str, str]] = []
    if spec.student.chat_template:
        issues.append(
            (
                "student.chat_template",
                "logit distillation aligns the teacher's tokens with the student "
                "tokenizer's own chat template (the one the teacher served): leave "
                "student.chat_template null",
            )
        )
    if not spec.teacher.top_logprobs:
        issues.append(("teacher.top_logprobs", "logit distillation needs the teacher's top-k logprobs: set it to 5-20"))
    if not spec.teacher.token_ids:
        issues.append(
            (
                "teacher.token_ids",
                "logit distillation needs token ids in the teacher's logprobs: set "
                "teacher.token_ids: true (vLLM's return_tokens_as_token_ids)",
            )
        )
    return issues


def _local_mismatch(t_dir: Path, s_dir: Path, teacher_tok: str, student: str) -> str | None:
    """Why two local tokenizer directories do not share one vocabulary, or None when they do."""
    t_vocab, s_vocab = local_vocabulary(t_dir), local_vocabulary(s_dir)
    if t_vocab is None or s_vocab is None:
        return f"cannot read the vocabulary of '{teacher_tok}' or '{student}' (tokenizer.json)"
    if t_vocab != s_vocab:
        differ = sum(1 for tok, i in t_vocab.items() if s_vocab.get(tok) != i) + len(set(s_vocab) - set(t_vocab))
        return (
            f"the teacher's tokenizer '{teacher_tok}' is not the student's ({differ} tokens differ): "
            f"logit distillation needs one vocabulary"
        )
    return None


def _family_mismatch(teacher_tok: str, student: str) -> str | None:
    """Why the two models' families do not (or may not) share one vocabulary, or None when they do."""
    t_family, s_family = family(teacher_tok), family(student)
    if t_family is None or s_family is None:
        return (
            f"cannot tell whether '{teacher_tok}' shares the vocabulary of '{student}': set "
            f"teacher.tokenizer to a local copy of the teacher's tokenizer so the two can be compared"
        )
    if t_family != s_family:
        return (
            f"the teacher '{teacher_tok}' ({t_family}) does not share the student's vocabulary "
            f"('{student}', {s_family}): serve a {s_family} teacher, or set student.kd.mode: labels"
        )
    return None
