"""Labels that span several tokens (`spam` = `sp` + `am`) or share a first token get the
probability of their full token sequence; the masses never sum above 1."""

from __future__ import annotations

import math
import random

import pytest

from distillbuild.llm.results import CallResult
from distillbuild.protocol.answers import answer_row
from distillbuild.protocol.softlabels import label_distribution, label_masses
from distillbuild.spec.model import Task, build

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`


def position(token: str, alternatives: dict[str, float]) -> dict:
    return {
        "token": token,
        "logprob": math.log(alternatives[token]),
        "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in alternatives.items()],
    }


SPAM = {"content": [position("sp", {"sp": 0.7, "ham": 0.2, "The": 0.05}), position("am", {"am": 0.9, "ammer": 0.08})]}


def test_a_two_token_label_gets_the_product_of_its_tokens():
    mass, ambiguous, bounded = label_masses(SPAM, ["spam", "ham"])
    assert mass == pytest.approx({"spam": 0.7 * 0.9, "ham": 0.2})
    assert not ambiguous and not bounded
    assert sum(mass.values()) <= 1
    probs, _ = label_distribution(SPAM, ["spam", "ham"])
    assert probs == pytest.approx({"spam": 0.63 / 0.83, "ham": 0.2 / 0.83})


def test_labels_sharing_a_first_token_are_told_apart_at_the_next():
    lp = {"content": [position("ph", {"ph": 0.8, "bug": 0.1}), position("ishing", {"ishing": 0.6, "one_issue": 0.3})]}
    mass, ambiguous, bounded = label_masses(lp, ["phishing", "phone_issue", "bug"])
    assert mass == pytest.approx({"phishing": 0.8 * 0.6, "phone_issue": 0.8 * 0.3, "bug": 0.1})
    assert not ambiguous and not bounded


def test_a_label_with_an_underscore_is_spelled_with_a_space_as_normalize_label_reads_it():
    lp = {
        "content": [
            position("feature", {"feature": 0.7, "bug": 0.2}),
            position(" request", {" request": 0.9, " flag": 0.1}),
        ]
    }
    mass, ambiguous, bounded = label_masses(lp, ["feature_request", "bug"])
    assert mass == pytest.approx({"feature_request": 0.7 * 0.9, "bug": 0.2}) and not ambiguous and not bounded


def test_an_unfinished_alternative_is_an_upper_bound_and_says_so():
    lp = {"content": [position("sp", {"sp": 0.6, "h": 0.3}), position("am", {"am": 1.0})]}
    mass, ambiguous, bounded = label_masses(lp, ["spam", "ham"])
    assert mass == pytest.approx({"spam": 0.6, "ham": 0.3}) and bounded and not ambiguous


def test_the_filter_confidence_is_the_label_probability_not_the_whole_answer():
    task = build(Task, {"type": "classification", "instruction": "Spam or ham?", "labels": ["spam", "ham"]})
    lp = {"content": SPAM["content"] + [position(".", {".": 0.5, "!": 0.5})]}  # "spam." : a trailing token
    response = {"choices": [{"message": {"content": "spam."}, "finish_reason": "stop", "logprobs": lp}]}
    row = answer_row({"id": 1, "text": "x"}, CallResult(response, False), task)
    assert row["confidence"] == pytest.approx(0.7 * 0.9)  # P(spam), not P("spam.") = 0.315
    assert row["label_probs"] == pytest.approx({"spam": 0.63 / 0.83, "ham": 0.2 / 0.83})
    assert row["label_mass"] == pytest.approx(0.83)  # the probability that the answer names a label


def test_masses_never_sum_above_one_on_random_token_trees():
    rng = random.Random(5)
    labels = ["spam", "sp", "spare", "ham", "hamper", "h"]
    pieces = ["sp", "am", "a", "re", "h", "am", "per", " ", "x", "s", "p"]
    for _ in range(300):
        content = []
        for _ in range(rng.randint(1, 4)):
            tokens = rng.sample(pieces, rng.randint(1, 5))
            weights = [rng.random() for _ in tokens]
            total = sum(weights) / rng.uniform(0.3, 1.0)  # top-k mass below 1, as real top-k is
            content.append(position(tokens[0], {t: w / total for t, w in zip(tokens, weights)}))
        mass, _, _ = label_masses({"content": content}, labels)
        assert sum(mass.values()) <= 1 + 1e-9
