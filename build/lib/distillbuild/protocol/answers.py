"""One teacher reply as the row the later stages read: the answer, its confidence and soft
label, the majority answer of several samples, logit-distillation targets, parsed JSON."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from distillbuild.llm.results import CallResult
from distillbuild.protocol.choice import unwrap_json_choice
from distillbuild.protocol.normalize import normalize_label, normalize_text
from distillbuild.protocol.reasoning import split_reply
from distillbuild.protocol.softlabels import answer_confidence, label_distribution, label_masses
from distillbuild.protocol.token_logprobs import kd_targets
from distillbuild.spec.model import Reasoning, Task


def _comparable(answer: str | None, task: Task) -> Any:
    """What two answers are compared by, for agreement: the label, the JSON value, or the text."""
    if answer is None:
        return None
    if task.type == "classification":
        return normalize_label(answer, task.labels)
    if task.type == "extraction":
        try:
            return json.dumps(json.loads(answer), sort_keys=True)
        except ValueError:
            return None
    return normalize_text(answer)


def answer_row(
    row: dict[str, Any],
    result: CallResult | None,
    task: Task,
    reasoning: Reasoning | None = None,
    choice: str | None = None,
) -> dict[str, Any]:
    """The row for one reply. With teacher.reasoning, each choice is split into rationale and
    answer first (protocol/reasoning.py): `answer` is the extracted answer, read at its own
    tokens; `rationale` and the whole reply (`raw_answer`) are kept beside it. `choice` is the
    label constraint's form the request carried (protocol/choice.py), None for free text.
    Classification rows carry `label` and `label_from` (read_label)."""
    out: dict[str, Any] = {"id": row["id"], "text": row["text"]}
    if result is None or result.response is None:
        out.update(answer=None, error=result.error if result else "not asked: the budget stopped the run")
        return out
    choices = [_answer_choice(c, reasoning) for c in result.response.get("choices") or [{}]]
    if choice == "json_schema":
        choices = [unwrap_json_choice(c) for c in choices]
    contents = [(c.get("message") or {}).get("content") for c in choices]
    chosen, agreement = 0, None
    if len(choices) > 1:  # self-consistency: keep the majority answer
        keys = [_comparable(c, task) for c in contents]
        votes = Counter(k for k in keys if k is not None)
        if votes:
            top, count = votes.most_common(1)[0]
            chosen, agreement = keys.index(top), count / len(choices)
        else:
            agreement = 0.0
    choice_form, chosen_choice = choice, choices[chosen]
    message = chosen_choice.get("message") or {}
    logprobs = chosen_choice.get("logprobs")
    labels = task.labels or ()
    probs, ambiguous = _mean_distribution([c.get("logprobs") for c in choices], labels) if labels else (None, False)
    first = ((logprobs or {}).get("content") or [{}])[0]
    if reasoning is not None:
        out.update(rationale=chosen_choice["rationale"], raw_answer=chosen_choice["raw_answer"])
    label, label_from = (
        read_label(message.get("content"), probs, labels, constrained=choice_form is not None)
        if labels
        else (None, None)
    )
    out.update(
        answer=message.get("content"),
        refusal=message.get("refusal"),
        finish_reason=chosen_choice.get("finish_reason"),
        confidence=answer_label_confidence(message.get("content"), logprobs, labels, label),
        label_probs=probs,
        soft_label_ambiguous=ambiguous,
        top_logprobs=[[a.get("token"), a.get("logprob")] for a in first.get("top_logprobs") or []],
        usage=result.response.get("usage"),
        system_fingerprint=result.response.get("system_fingerprint"),
        error=None,
    )
    if labels:
        out.update(label=label, label_from=label_from)
    if labels and logprobs:
        masses, _, bounded = label_masses(logprobs, labels)
        out["label_mass"] = round(sum(masses.values()), 6)  # how much of the answer's probability names a label
        if bounded:
            out["soft_label_bounded"] = True  # a label's mass was read off a path the teacher did not finish
    if len(choices) > 1:
        out.update(samples=contents, agreement=agreement)
    kd = kd_targets(logprobs)
    if kd is not None:  # per-token distributions with ids: logit distillation's targets
        out["kd"] = kd
    if task.type == "extraction":
        try:
            out.update(parsed=json.loads(message.get("content") or ""), parse_error=None)
        except ValueError as exc:
            out.update(parsed=None, parse_error=f"not JSON: {exc}")
    return out


def _answer_choice(choice: dict[str, Any], reasoning: Reasoning | None) -> dict[str, Any]:
    """A choice as the rest of answer_row reads it: with reasoning, its message's content is the
    extracted answer and its logprobs the answer's tokens; the rationale rides along."""
    if reasoning is None:
        return choice
    message = choice.get("message") or {}
    split = split_reply(message, choice.get("logprobs"), reasoning)
    return {
        **choice,
        "message": {**message, "content": split.answer},
        "logprobs": split.logprobs,
        "rationale": split.rationale,
        "raw_answer": message.get("content"),
    }


def answer_label_confidence(
    answer: str | None, logprobs: dict[str, Any] | None, labels: tuple[str, ...], label: str | None = None
) -> float | None:
    """The probability of the answer's label (its full token sequence, trailing tokens aside) when
    it is one (or `label`, the one read_label took); else of the whole answer. A causal
    student's answers are scored by this too."""
    label = label or (normalize_label(answer, labels) if labels and answer else None)
    masses = label_masses(logprobs, labels)[0] if label else {}
    return masses[label] if label in masses else answer_confidence(logprobs)


def read_label(
    answer: str | None, probs: dict[str, float] | None, labels: tuple[str, ...], *, constrained: bool = False
) -> tuple[str | None, str | None]:
    """(label, how it was read) for a classification answer:

    - `constrained`: the request held the answer to the labels, and it is one;
    - `text`: the answer is a label (case, quotes, a "Category:" prefix and punctuation aside);
    - `prefix`: free text that begins with exactly one label, as a word, and goes on with words
      that name no label (a base model rambling past its answer: "sports deportiva subtree");
    - `probabilities`: the answer names no label; the most probable label among its label
      probabilities (a 135M model answering "economy" while its probabilities say `business`);
    - (None, None): nothing names a label."""
    label = normalize_label(answer, list(labels))
    if label is not None:
        return label, "constrained" if constrained else "text"
    if not constrained:
        lead = leading_label(answer, labels)
        if lead is not None:
            return lead, "prefix"
    if probs:
        return max(probs, key=lambda l: (probs[l], -labels.index(l))), "probabilities"
    return None, None


_WORD = re.compile(r"[\w'-]+", re.UNICODE)


def leading_label(answer: str | None, labels: tuple[str, ...]) -> str | None:
    """The one label the answer starts with, when the words after it name none."""
    words = _WORD.findall(answer or "")
    for n in range(len(words) - 1, 0, -1):  # the longest head of words that is a label
        label = normalize_label(" ".join(words[:n]), list(labels))
        if label is not None:
            rest = words[n:]
            if any(normalize_label(w, list(labels)) for w in rest):
                return None  # "spam or legit": more than one label named
            return label
    return None


def _mean_distribution(logprobs_per_choice: list[Any], labels: tuple[str, ...]) -> tuple[dict[str, float] | None, bool]:
    """The label distribution averaged over the sampled answers (one answer: its own)."""
    dists, ambiguous = [], False
    for logprobs in logprobs_per_choice:
        dist, amb = label_distribution(logprobs, labels)
        ambiguous |= amb
        if dist:
            dists.append(dist)
    if not dists:
        return None, ambiguous
    if len(dists) == 1:
        return dists[0], ambiguous
    mean = {l: sum(d.get(l, 0.0) for d in dists) / len(dists) for l in labels}
    return {l: p for l, p in sorted(mean.items(), key=lambda kv: -kv[1]) if p > 0}, ambiguous
