"""The stand-in teacher's answers: from an answer key, with a set accuracy, as Chat Completions.

It answers each prompt from an answer key ({"text", "label", "alternatives"}) with a set
accuracy. A wrong answer is a plausible confusion (the key's first alternative, most of the
time), and confidence is calibrated the way real teachers roughly are: right answers mostly
confident, wrong ones mostly not, with overlap, so a confidence filter helps but is not an
oracle. Each label is emitted as a single token, with `top_logprobs` over the other labels.
Every choice is a function of (seed, prompt), so runs are reproducible.

The HTTP server around it (provider behaviour, Files + Batches) is distillbuild.endpoints.standin.server.
It is a stand-in for a real teacher, labelled as such wherever its results are shown.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillbuild.endpoints.standin.tokens import load_tokenizer, token_logprobs
from distillbuild.protocol.choice import labels_of
from distillbuild.protocol.prompts import prompt_text

# Part of the simulated endpoint's identity in cache keys: bump it whenever answers change for
# the same key file, accuracy and seed, so no cache serves answers of an older stand-in.
BEHAVIOUR_VERSION = 2


def norm(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class KeyEntry:
    label: Any  # a class name, or for extraction a JSON object, or for generation a text
    alternatives: tuple[Any, ...] = ()
    says: str | None = None  # free text only: a word of its own for the label ("economy" for business)


def load_answer_key(path: Path) -> dict[str, KeyEntry]:
    key: dict[str, KeyEntry] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            alternatives = row.get("alternatives") or ()
            key[norm(row["text"])] = KeyEntry(
                row["label"], tuple(alternatives) if isinstance(alternatives, list) else (), row.get("says")
            )
    return key


@dataclass(frozen=True)
class SimAnswer:
    label: str
    prob: float
    top: tuple[tuple[str, float], ...]  # (label, probability), most likely first


class SimulatedTeacher:
    """The answering logic, apart from HTTP."""

    def __init__(
        self,
        key: dict[str, KeyEntry],
        labels: list[str],
        accuracy: float,
        seed: int,
        tokenizer: str | None = None,
        reasoning: bool = False,
        explain_instruction: str | None = None,
    ):
        self.key = {norm(text): entry for text, entry in key.items()}  # looked up by normalised prompt
        self.labels, self.accuracy, self.seed = list(labels), accuracy, seed
        self.tokenizer = tokenizer  # the teacher's tokenizer (a local path): token ids in logprobs
        self.reasoning = reasoning  # a reasoning model: reasoning_content beside every answer
        self.explain_instruction = explain_instruction  # teacher.reasoning explain mode: "why?" after an answer

    def _rng(self, text: str, sample: int) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}\0{sample}\0{norm(text)}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def answer(self, text: str, sample: int = 0) -> SimAnswer:
        if not self.labels:
            return self._answer_open(text, sample)
        rng = self._rng(text, sample)
        entry = self.key.get(norm(text))
        others = lambda exclude: [l for l in self.labels if l not in exclude]  # noqa: E731
        if entry is None or entry.label not in self.labels:
            # Not in the key: an unsure guess.
            label, prob, gold, alts = rng.choice(self.labels), 0.25 + 0.25 * rng.random(), None, []
        elif rng.random() < self.accuracy:
            gold, alts = entry.label, [a for a in entry.alternatives if a in self.labels and a != entry.label]
            label, prob = gold, 1.0 - 0.45 * rng.random() ** 2  # mostly confident: 0.55-1, median 0.89
        else:
            gold, alts = entry.label, [a for a in entry.alternatives if a in self.labels and a != entry.label]
            if alts and rng.random() < 0.8:
                label = alts[0]
            else:
                label = rng.choice(others({gold}))
            prob = 0.25 + 0.7 * rng.random() ** 1.5  # mostly unsure, sometimes confidently wrong: 0.25-0.95
        # Spread the remaining mass: the true label and the plausible confusions first.
        rest = 1.0 - prob
        runners = list(dict.fromkeys(l for l in ([gold] if gold else []) + alts if l != label))
        runners += others({label, *runners})
        weights = [4.0 if l == gold else 2.0 if l in alts else 0.2 * rng.random() for l in runners]
        total = sum(weights) or 1.0
        top = [(label, prob)] + sorted(((l, rest * w / total) for l, w in zip(runners, weights)), key=lambda x: -x[1])
        return SimAnswer(label, prob, tuple(top))

    def _answer_open(self, text: str, sample: int) -> SimAnswer:
        """Extraction and generation: the key's answer (JSON objects serialised), or a plausible
        mistake: the first alternative, or for an object the same object missing one field."""
        rng = self._rng(text, sample)
        entry = self.key.get(norm(text))
        if entry is None:
            return SimAnswer("{}", 0.3, (("{}", 0.3),))
        answer, prob = entry.label, 1.0 - 0.45 * rng.random() ** 2
        if rng.random() >= self.accuracy:
            prob = 0.25 + 0.7 * rng.random() ** 1.5
            if entry.alternatives:
                answer = entry.alternatives[0]
            elif isinstance(answer, dict) and answer:
                dropped = rng.choice(sorted(answer))
                answer = {k: v for k, v in answer.items() if k != dropped}
        content = answer if isinstance(answer, str) else json.dumps(answer, sort_keys=True, ensure_ascii=False)
        return SimAnswer(content, prob, ((content, prob),))


# A system prompt asking for reasoning first and the answer after a marker (protocol/prompts.py).
_ASKS_REASONING = re.compile(r"on a last line that starts with `([^`]+)`")
EMPTY_RATIONALE_RATE = 0.02  # a reasoning reply with no reasoning in it
NO_ANSWER_LINE_RATE = 0.02  # a prompt-mode reply that never writes the marker line


def rationale(text: str, label: str, runner_up: str | None, rng: random.Random) -> str:
    """A short, plausible rationale for the label (empty now and then, as real ones can be)."""
    if rng.random() < EMPTY_RATIONALE_RATE:
        return ""
    words = " ".join(text.split()[:8])
    against = f", more than {runner_up.replace('_', ' ')}" if runner_up else ""
    return (
        f'The message reads "{words}...". What it asks about points to {label.replace("_", " ")}{against}. '
        f"So the category is {label}."
    )


def token_entry(token: str, prob: float) -> dict[str, Any]:
    return {"token": token, "logprob": math.log(max(prob, 1e-12)), "bytes": list(token.encode())}


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """The stand-in's prompt token count (about 4 characters a token): the usage block and the tpm limit."""
    return sum(4 + len(str(m.get("content", ""))) // 4 for m in messages) + 3


def explained(teacher: SimulatedTeacher, messages: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(input, answer) when the conversation ends with an input, its answer and the explain
    instruction (teacher.reasoning in explain mode; protocol/prompts.py explain_messages). Known by
    that instruction, never by shape alone: a few-shot request ends with user, assistant, user too,
    so no plain request is answered differently than before explain mode existed."""
    why = teacher.explain_instruction
    roles = [m.get("role") for m in messages[-3:]]
    if not why or roles != ["user", "assistant", "user"] or str(messages[-1].get("content") or "").strip() != why:
        return None
    return str(messages[-3].get("content") or ""), str(messages[-2].get("content") or "")


def explanation_body(
    teacher: SimulatedTeacher, text: str, answer: str, model: str, counter: int, prompt_tokens: int
) -> dict[str, Any]:
    """The stand-in's explanation of an answer it was given (empty now and then, as real ones can be)."""
    why = rationale(text, answer, None, teacher._rng(text, 3000))
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": why, "refusal": None},
        "finish_reason": "stop",
        "logprobs": None,
    }
    return chat_completion("sim", counter, model, teacher.seed, [choice], prompt_tokens, 1 + len(why) // 4)


def completion_body(teacher: SimulatedTeacher, request: dict[str, Any], model: str, counter: int) -> dict[str, Any]:
    """A Chat Completions response for one (non G-Eval) request body."""
    messages = request.get("messages") or []
    asked_why = explained(teacher, messages)
    if asked_why is not None:
        return explanation_body(teacher, *asked_why, model, counter, estimate_prompt_tokens(messages))
    text = prompt_text(messages)
    n = int(request.get("n") or 1)
    temperature = float(request.get("temperature") if request.get("temperature") is not None else 1.0)
    k = int(request.get("top_logprobs") or 0)
    want_logprobs = bool(request.get("logprobs"))
    choices = []
    system = str((messages[0].get("content") if messages and messages[0].get("role") == "system" else "") or "")
    asked = _ASKS_REASONING.search(system)
    constrained = labels_of(request) if teacher.labels else None
    for i in range(n):
        ans = teacher.answer(text, sample=i if temperature > 0 else 0)
        if constrained is not None:
            ans = held_to(ans, constrained[1])
        choice: dict[str, Any] = {
            "index": i,
            "message": {"role": "assistant", "content": ans.label, "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
        if want_logprobs and request.get("return_tokens_as_token_ids"):
            # vLLM's extension: every position, its token named by id in the teacher's vocabulary.
            if not teacher.tokenizer:
                raise ValueError(
                    "return_tokens_as_token_ids needs the stand-in to know its tokenizer (teacher.tokenizer)"
                )
            rng = teacher._rng(text, 1000 + i)
            content = token_logprobs(load_tokenizer(teacher.tokenizer), ans.label, ans.top, k, rng)
            choice["logprobs"] = {"content": content, "refusal": None}
        elif want_logprobs:
            entry = token_entry(ans.label, ans.prob)
            entry["top_logprobs"] = [token_entry(l, p) for l, p in ans.top[:k]]
            choice["logprobs"] = {"content": [entry], "refusal": None}
        entry = teacher.key.get(norm(text))
        if constrained is None and entry is not None and entry.says and not (asked or teacher.reasoning):
            _in_own_words(choice, entry.says, ans, k if want_logprobs else 0)
        if asked or teacher.reasoning:
            _reason(choice, teacher, text, ans, i, asked.group(1) if asked else None, k if want_logprobs else 0)
        if constrained is not None and constrained[0] == "json_schema":
            _as_json_answer(choice)
        choices.append(choice)
    reasoned = bool(asked or teacher.reasoning)
    completion_tokens = (
        n
        if teacher.labels and not reasoned
        else sum(1 + len(c["message"]["content"] + c["message"].get("reasoning_content", "")) // 4 for c in choices)
    )
    return chat_completion(
        "sim", counter, model, teacher.seed, choices, estimate_prompt_tokens(messages), completion_tokens
    )


def held_to(ans: SimAnswer, allowed: list[str]) -> SimAnswer:
    """An answer as constrained decoding gives it: the most probable allowed label, and the
    probabilities of the allowed labels only (a grammar masks every other token)."""
    top = [(l, p) for l, p in ans.top if l in allowed] or [(allowed[0], 1.0)]
    total = sum(p for _, p in top)
    top = [(l, p / total) for l, p in top]
    return SimAnswer(top[0][0], top[0][1], tuple(top))


OWN_WORD_SHARE = 0.6  # the probability of the teacher's own word; the labels share the rest


def _in_own_words(choice: dict[str, Any], word: str, ans: SimAnswer, k: int) -> None:
    """The answer as a small model asked for free text gives it: its own word for the category,
    while its probabilities still lean to the labels (the answer key's `says`)."""
    choice["message"]["content"] = word
    if k:
        top = [(word, OWN_WORD_SHARE)] + [(l, p * (1 - OWN_WORD_SHARE)) for l, p in ans.top]
        entry = token_entry(word, OWN_WORD_SHARE)
        entry["top_logprobs"] = [token_entry(l, p) for l, p in top[:k]]
        choice["logprobs"] = {"content": [entry], "refusal": None}


def _as_json_answer(choice: dict[str, Any]) -> None:
    """The choice as OpenAI's structured outputs writes it: {"label": "..."}, the label's own
    token (and its alternatives) between the JSON's."""
    label = choice["message"]["content"]
    choice["message"]["content"] = json.dumps({"label": label})
    if choice["logprobs"]:
        entry = choice["logprobs"]["content"][0]
        choice["logprobs"]["content"] = [token_entry('{"label": "', 1.0), entry, token_entry('"}', 1.0)]


def _reason(
    choice: dict[str, Any],
    teacher: SimulatedTeacher,
    text: str,
    ans: SimAnswer,
    sample: int,
    marker: str | None,
    k: int,
) -> None:
    """The choice as a reasoning teacher gives it: the rationale in the content before the marker's
    line (prompt mode), or apart as reasoning_content (a reasoning model)."""
    rng = teacher._rng(text, 2000 + sample)
    runner_up = ans.top[1][0] if len(ans.top) > 1 else None
    why = rationale(text, ans.label, runner_up, rng)
    message = choice["message"]
    if marker is None:
        message["reasoning_content"] = why
        return
    if rng.random() < NO_ANSWER_LINE_RATE:  # it reasons, and forgets to give the answer line
        message["content"] = why or f"It could be {ans.label}."
        if choice["logprobs"] is not None:
            choice["logprobs"] = {"content": [token_entry(message["content"], 0.9)], "refusal": None}
        return
    lead = f"{why}\n{marker}" if why else marker
    message["content"] = f"{lead} {ans.label}"
    if choice["logprobs"] is not None:  # the reasoning as one confident token, then the answer's token
        answer = token_entry(" " + ans.label, ans.prob)
        answer["top_logprobs"] = [token_entry(" " + l, p) for l, p in ans.top[:k]]
        choice["logprobs"] = {"content": [token_entry(lead, 0.95), answer], "refusal": None}


def chat_completion(
    server: str,
    counter: int,
    model: str,
    seed: int,
    choices: list[dict[str, Any]],
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    """A ``chat.completion`` body of a stand-in server (``server``: "sim" for the teacher,
    "simjudge" for the judge), its id and system fingerprint named after it."""
    return {
        "id": f"chatcmpl-{server}-{counter}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": f"fp_{server}_{seed}",
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
