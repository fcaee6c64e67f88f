"""The offline stand-in judge: answers DeepEval G-Eval prompts sent to the simulated server.

A G-Eval request is recognised by DeepEval's own prompt templates (deepeval 4.3,
metrics/g_eval/templates): the scoring prompt starts "You are an evaluator." and carries an
"Evaluation Steps:" and a "Test Case:" block; the step-writing prompt (criteria without
evaluation_steps) starts "Given an evaluation criteria which outlines how you should judge".
Any simulated server answers them, so the judge can point at a simulated teacher too; the filter
and evaluate stages start their own server with a `SimulatedJudge` (distillbuild.endpoints.standin.start_endpoint).

The verdict: the test case's Input is looked up in the answer key ({"text", "label",
"alternatives"}) and its Actual Output compared with the key's label. A correct answer scores
8-10 of 10, a wrong one 0-3. With probability 1 - accuracy the judge misjudges (the verdict is
flipped), and every draw is a function of (seed, input, output), so reruns agree. An input the
key lacks scores 5 (unsure). The answer is the JSON G-Eval parses, {"reason", "score"}, and with
`logprobs` the score token carries top_logprobs over neighbouring scores, so G-Eval's
probability-weighted score works as it does with a real judge.

It is a stand-in for a real judge; its reasons say so, and reports label it as simulated.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

from distillbuild.endpoints.standin.teacher import (
    KeyEntry,
    SimulatedTeacher,
    chat_completion,
    estimate_prompt_tokens,
    norm,
    token_entry,
)

# Part of the simulated judge's identity in cache keys: bump it whenever verdicts change for
# the same key file, accuracy and seed, so no cache serves verdicts of an older stand-in.
JUDGE_BEHAVIOUR_VERSION = 1

RESULTS_MARK = "You are an evaluator."
STEPS_MARK = "Given an evaluation criteria which outlines how you should judge"
STAND_IN = "(simulated judge)"

_STEPS = [
    "Read the Input and work out what a correct answer to it must say.",
    "Compare the Actual Output with that answer: the same facts, the same label or value.",
    "Score high only when the Actual Output answers the Input correctly; score low when it is wrong, "
    "incomplete or off-topic.",
]
_WORD = re.compile(r"\w+")
_MATCH_F1 = 0.8  # token F1 with the key's answer at or above which a free-text answer counts as right


def _prompt(request: dict[str, Any]) -> str | None:
    messages = request.get("messages")
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else None
    return None


def geval_kind(request: dict[str, Any]) -> str | None:
    """ "results" (score a test case), "steps" (write evaluation steps) or None (not a G-Eval prompt)."""
    prompt = _prompt(request)
    if not prompt:
        return None
    head = prompt.lstrip()
    if head.startswith(RESULTS_MARK) and "\nEvaluation Steps:\n" in prompt and "\nTest Case:\n" in prompt:
        return "results"
    if head.startswith(STEPS_MARK) and "Evaluation Criteria:" in prompt:
        return "steps"
    return None


def parse_test_case(prompt: str, known: Callable[[str], bool] = lambda _: False) -> tuple[str, str | None]:
    """(input, actual output) from a G-Eval scoring prompt.

    G-Eval writes each parameter as "Name:\\nvalue \\n\\n" between "Test Case:" and "Parameters:".
    An input may itself contain "Actual Output:", so every split is tried and the one whose
    input the answer key knows (`known`) wins; else the first."""
    start = prompt.index("\nTest Case:\n") + len("\nTest Case:\n")
    end = prompt.rfind("\n\nParameters:\n")
    block = prompt[start : end if end > start else len(prompt)]
    if block.startswith("Input:\n"):
        block = block[len("Input:\n") :]
    sep = " \n\nActual Output:\n"
    splits = [m.start() for m in re.finditer(re.escape(sep), block)]
    if not splits:
        return block.rstrip(), None
    choice = next((i for i in splits if known(block[:i])), splits[0])
    output = block[choice + len(sep) :]
    for tail in (" \n\n\n", " \n\n", " \n"):
        if output.endswith(tail):
            output = output[: -len(tail)]
            break
    # Later parameters (Expected Output, Context, ...) are not read by the stand-in.
    output = re.split(r" \n\n(?:Expected Output|Context|Retrieval Context|Metadata|Tags):\n", output, maxsplit=1)[0]
    return block[:choice], output


def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def _f1(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return float(wa == wb)
    common = sum(min(wa.count(w), wb.count(w)) for w in set(wa))
    if common == 0:
        return 0.0
    p, r = common / len(wa), common / len(wb)
    return 2 * p * r / (p + r)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def answer_is_right(output: str, entry: KeyEntry) -> bool:
    """The output says what the key says: the same JSON value, the same words, the key's answer
    inside a longer text that names none of the alternatives, or a token F1 of at least 0.8 with
    the key's answer and closer to it than to any alternative."""
    gold = entry.label
    if not isinstance(gold, str):
        try:
            return json.loads(output) == gold
        except ValueError:
            return False
    words, gold_words = _words(output), _words(gold)
    if words == gold_words:
        return True
    alternatives = [_words(_as_text(a)) for a in entry.alternatives]
    if _contains(words, gold_words) and not any(alt and _contains(words, alt) for alt in alternatives):
        return True  # "The capital is Ottawa": the key's answer inside a sentence, no confusion named
    score = _f1(output, gold)
    return score >= _MATCH_F1 and all(score > _f1(output, _as_text(a)) for a in entry.alternatives)


def _contains(words: list[str], part: list[str]) -> bool:
    n = len(part)
    return n > 0 and any(words[i : i + n] == part for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class Verdict:
    score: int  # 0..10, G-Eval's default range
    reason: str
    top: tuple[tuple[int, float], ...]  # (score, probability) for the score token's top_logprobs


class SimulatedJudge(SimulatedTeacher):
    """The stand-in judge. Other prompts sent to its server get the open-answer teacher's reply."""

    def __init__(self, key: dict[str, KeyEntry], accuracy: float, seed: int):
        super().__init__(key, [], accuracy=1.0, seed=seed)
        self.judge_accuracy = float(accuracy)


def verdict(key: dict[str, KeyEntry], text: str, output: str | None, accuracy: float, seed: int) -> Verdict:
    digest = hashlib.sha256(f"judge\0{seed}\0{norm(text)}\0{norm(output or '')}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    entry = key.get(norm(text))
    if entry is None:
        score, reason = 5, f"{STAND_IN} The input is not in the answer key, so the answer cannot be checked."
    else:
        right = output is not None and answer_is_right(output, entry)
        judged_right = right if rng.random() < accuracy else not right
        shown = (output or "")[:80]
        if judged_right:
            score = 10 - int(rng.random() * 3)  # 8..10
            reason = f"{STAND_IN} The actual output {shown!r} answers the input as the reference answer does."
        else:
            score = int(rng.random() * 4)  # 0..3
            reason = (
                f"{STAND_IN} The actual output {shown!r} does not answer the input correctly; "
                f"the reference answer is {_as_text(entry.label)[:80]!r}."
            )
    p = 0.6 + 0.35 * rng.random()  # the judge's certainty about its own score
    near = [s for s in (score - 1, score + 1) if 0 <= s <= 10]
    top = ((score, p),) + tuple((s, (1 - p) / len(near)) for s in near)
    return Verdict(score, reason, top)


def judge_completion(
    teacher: SimulatedTeacher, request: dict[str, Any], model: str, counter: int
) -> dict[str, Any] | None:
    """The Chat Completions body for a G-Eval request, or None when the request is not one."""
    kind = geval_kind(request)
    if kind is None:
        return None
    prompt = _prompt(request) or ""
    want_logprobs = bool(request.get("logprobs"))
    k = int(request.get("top_logprobs") or 0)
    if kind == "steps":
        content = json.dumps({"steps": _STEPS})
        tokens = [(content, 1.0, ())]
    else:
        key = teacher.key
        text, output = parse_test_case(prompt, lambda t: norm(t) in key)
        accuracy = getattr(teacher, "judge_accuracy", 1.0)
        v = verdict(key, text, output, accuracy, teacher.seed)
        head = json.dumps({"reason": v.reason, "score": v.score})[: -len(str(v.score)) - 1]
        content = f"{head}{v.score}}}"
        tokens = [(head, 1.0, ()), (str(v.score), v.top[0][1], v.top), ("}", 1.0, ())]
    n = int(request.get("n") or 1)
    choices = []
    for i in range(n):
        choice: dict[str, Any] = {
            "index": i,
            "message": {"role": "assistant", "content": content, "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
        if want_logprobs:
            entries = []
            for token, prob, top in tokens:
                entry = token_entry(token, prob)
                entry["top_logprobs"] = (
                    [token_entry(str(s), p) for s, p in top[:k]] if top else [token_entry(token, prob)][:k]
                )
                entries.append(entry)
            choice["logprobs"] = {"content": entries, "refusal": None}
        choices.append(choice)
    return chat_completion(
        "simjudge",
        counter,
        model,
        teacher.seed,
        choices,
        estimate_prompt_tokens(request.get("messages") or []),
        n * (1 + len(content) // 4),
    )
