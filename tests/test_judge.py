"""The LLM-as-judge filter and generation metrics: DeepEval's G-Eval through the project's client and
cache, against the simulated judge on 127.0.0.1 over real HTTP (nothing mocks the SDK)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import write_rows

from distillbuild.cli import main
from distillbuild.endpoints.standin.judge import SimulatedJudge, answer_is_right, geval_kind, verdict
from distillbuild.endpoints.standin.sections import judge_server_from_section
from distillbuild.endpoints.standin.teacher import KeyEntry, load_answer_key
from distillbuild.errors import SpecError, StageError
from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.spec import load_spec

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

CAPITALS = [
    ("France", "Paris", "Lyon"),
    ("Japan", "Tokyo", "Osaka"),
    ("Italy", "Rome", "Milan"),
    ("Spain", "Madrid", "Barcelona"),
    ("Canada", "Ottawa", "Toronto"),
    ("Australia", "Canberra", "Sydney"),
    ("Brazil", "Brasilia", "Rio de Janeiro"),
    ("Turkey", "Ankara", "Istanbul"),
    ("Switzerland", "Bern", "Zurich"),
    ("Morocco", "Rabat", "Casablanca"),
    ("Vietnam", "Hanoi", "Ho Chi Minh City"),
    ("Nigeria", "Abuja", "Lagos"),
    ("Pakistan", "Islamabad", "Karachi"),
    ("India", "New Delhi", "Mumbai"),
]
STEPS = [
    "Check that the Actual Output names the capital city the Input asks about.",
    "Score low when the city named is not the capital.",
]


def question(country: str) -> str:
    return f"What is the capital city of {country}?"


def judge_section(**overrides) -> dict:
    section = {
        "provider": "simulated",
        "model": "sim-judge",
        "evaluation_steps": list(STEPS),
        "min_score": 0.5,
        "concurrency": 8,
        "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
        "simulated": {"answers": "data/key.jsonl", "accuracy": 1.0, "seed": 5, "latency_ms": 0},
    }
    section.update(overrides)
    return section


def gen_spec(**judge_overrides) -> dict:
    return {
        "version": 1,
        "name": "capitals",
        "task": {"type": "generation", "instruction": "Answer with the capital city only."},
        "data": {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl"},
        "teacher": {
            "provider": "simulated",
            "model": "sim-teacher",
            "simulated": {"answers": "data/key.jsonl", "accuracy": 0.8, "latency_ms": 0, "seed": 3},
        },
        "filters": {"min_confidence": 0, "decontaminate": False, "judge": judge_section(**judge_overrides)},
        "student": {
            "kind": "causal-lm",
            "base_model": "tiny/llama",
            "trainer": "axolotl",
            "max_length": 256,
            "kd": {"alpha": 0},
        },
        "evaluation": {"judge": judge_section()},
        "gates": {"geval_mean": {"min": 0.5}},
        "promote": {"name": "capitals"},
    }


@pytest.fixture
def gen_project(tmp_path: Path, monkeypatch):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write_rows(
        tmp_path / "data/key.jsonl",
        [{"text": question(c), "label": cap, "alternatives": [alt]} for c, cap, alt in CAPITALS],
    )
    write_rows(
        tmp_path / "data/inputs.jsonl",
        [{"id": f"q{i}", "text": question(c)} for i, (c, _, _) in enumerate(CAPITALS[:10])],
    )
    write_rows(
        tmp_path / "data/heldout.jsonl",
        [{"id": f"h{i}", "text": question(c), "label": cap} for i, (c, cap, _) in enumerate(CAPITALS[10:])],
    )
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / ".distill/cache"))
    monkeypatch.chdir(tmp_path)

    def write(spec: dict) -> Path:
        path = tmp_path / "distill.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        return path

    write.root = tmp_path  # type: ignore[attr-defined]
    return write


def answer_row(i: int, answer, **extra) -> dict:
    country = CAPITALS[i][0]
    return {
        "id": f"q{i}",
        "text": question(country),
        "answer": answer,
        "finish_reason": "stop",
        "error": None,
        "confidence": None,
        **extra,
    }


# Planted teacher answers: right ones (one with decoration the judge must see through), wrong ones,
# and two rows the cheaper checks reject before any judge is asked.
RIGHT = {0: "Paris", 1: "Tokyo.", 3: "Madrid", 4: "The capital is Ottawa", 6: "Brasilia", 9: "Rabat"}
WRONG = {2: "Milan", 5: "Sydney", 7: "Istanbul"}


def planted_rows() -> list[dict]:
    rows = [answer_row(i, a) for i, a in {**RIGHT, **WRONG}.items()]
    rows.append(answer_row(8, None, error="server_error: gave up after 5 retries"))
    rows.append({**answer_row(8, "I'm sorry, I can't help with that."), "id": "q8b"})
    return sorted(rows, key=lambda r: r["id"])


def read(root: Path, name: str):
    path = root / "build/filter" / name
    return read_report(path) if name.endswith(".json") else [json.loads(l) for l in path.open()]


def test_judge_rejects_exactly_the_wrong_answers_and_a_rerun_pays_nothing(gen_project):
    root = gen_project.root
    spec = load_spec(gen_project(gen_spec()))
    write_rows(root / "build/teacher/answers.jsonl", planted_rows())

    t0 = time.perf_counter()
    assert run_stage("filter", spec) == 0
    first_s = time.perf_counter() - t0
    report = read(root, "report.json")
    rejected = read(root, "rejected.jsonl")
    assert report["by_reason"]["judge_low_score"] == len(WRONG) == 3
    assert sorted(r["id"] for r in rejected if r["reason"] == "judge_low_score") == sorted(f"q{i}" for i in WRONG)
    assert {r["id"]: r["reason"] for r in rejected if r["reason"] != "judge_low_score"} == {
        "q8": "teacher_error",
        "q8b": "refusal",
    }
    assert sorted(r["id"] for r in read(root, "kept.jsonl")) == sorted(f"q{i}" for i in RIGHT)
    for row in rejected:
        if row["reason"] == "judge_low_score":
            assert row["detail"].startswith("score 0.") and "< 0.5" in row["detail"]
            assert "(simulated judge)" in row["detail"] and "does not answer" in row["detail"]
    judge = report["judge"]
    assert judge["simulated"] is True and judge["model"] == "sim-judge"
    assert judge["rows_judged"] == len(RIGHT) + len(WRONG)  # the error and the refusal cost nothing
    assert judge["calls"] == {"requested": 9, "from_cache": 0, "billed": 9, "retries": {}}
    assert judge["below_min_score"] == 3 and judge["cost_usd"] > 0
    assert judge["tokens"]["prompt"] > 0

    kept_before = (root / "build/filter/kept.jsonl").read_bytes()
    t0 = time.perf_counter()
    assert run_stage("filter", spec) == 0
    rerun_s = time.perf_counter() - t0
    again = read(root, "report.json")["judge"]
    assert again["calls"] == {"requested": 9, "from_cache": 9, "billed": 0, "retries": {}}
    assert again["cost_usd"] == 0
    assert (root / "build/filter/kept.jsonl").read_bytes() == kept_before
    print(f"\nfilter with judge: first run {first_s:.2f} s (9 judge calls), cached rerun {rerun_s:.2f} s")


def test_judge_scores_are_weighted_by_logprobs_or_plain_integers(gen_project):
    root = gen_project.root
    write_rows(root / "build/teacher/answers.jsonl", planted_rows())
    assert run_stage("filter", load_spec(gen_project(gen_spec()))) == 0
    weighted = [r["detail"] for r in read(root, "rejected.jsonl") if r["reason"] == "judge_low_score"]
    assert run_stage("filter", load_spec(gen_project(gen_spec(logprobs=False)))) == 0
    plain = read(root, "report.json")["judge"]
    assert plain["calls"]["billed"] == 9  # a different request body: not served from the other's cache
    scores = [float(r["detail"].split()[1]) for r in read(root, "rejected.jsonl") if r["reason"] == "judge_low_score"]
    assert all(abs(s * 10 - round(s * 10)) < 1e-9 for s in scores), scores  # the judge's integer / 10
    assert any(abs(float(d.split()[1]) * 10 - round(float(d.split()[1]) * 10)) > 1e-6 for d in weighted)


def test_criteria_without_steps_costs_one_extra_cached_request(gen_project):
    root = gen_project.root
    write_rows(root / "build/teacher/answers.jsonl", planted_rows())
    spec = gen_spec()
    spec["filters"]["judge"].pop("evaluation_steps")
    spec["filters"]["judge"]["criteria"] = "The answer names the capital city of the country asked about."
    assert run_stage("filter", load_spec(gen_project(spec))) == 0
    report = read(root, "report.json")
    assert report["by_reason"]["judge_low_score"] == 3
    assert report["judge"]["calls"]["billed"] == 9 + 1 and report["judge"]["rounds"] == 3


def test_an_unreachable_judge_stops_the_stage_with_exit_3(gen_project, monkeypatch):
    root = gen_project.root
    write_rows(root / "build/teacher/answers.jsonl", planted_rows())
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = gen_spec()
    spec["filters"]["judge"] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": f"http://127.0.0.1:{port}/v1",
        "api_key_env": "JUDGE_TEST_KEY",
        "evaluation_steps": STEPS,
        "max_retries": 1,
        "timeout_s": 5,
    }
    monkeypatch.setenv("JUDGE_TEST_KEY", "test-key-not-secret")
    path = gen_project(spec)
    with pytest.raises(StageError, match=r"the judge \(gpt-4o-mini .*\) failed on 9 of 9 requests \(connection 9\)"):
        run_stage("filter", load_spec(path))
    result = CliRunner().invoke(main, ["stage", "filter", "--spec", str(path)])
    assert result.exit_code == 3, result.output
    assert "judge" in result.output and "No row was kept or dropped" in result.output
    assert not (root / "build/filter/kept.jsonl").exists()

    monkeypatch.delenv("JUDGE_TEST_KEY")
    with pytest.raises(StageError, match=r"JUDGE_TEST_KEY.*filters\.judge\.api_key_env"):
        run_stage("filter", load_spec(path))


def test_judge_spec_defaults_and_dvc_dependency(gen_project):
    spec = load_spec(gen_project(gen_spec()))
    judge = spec.get("filters.judge")
    assert (judge["logprobs"], judge["temperature"], judge["max_retries"], judge["base_url"]) == (True, 0, 5, None)
    assert spec.get("evaluation.judge.min_score") == 0.5
    from distillbuild.pipeline.compile import pipeline

    assert "data/key.jsonl" in pipeline(spec)["stages"]["filter"]["deps"]
    no_judge = gen_spec()
    no_judge["filters"].pop("judge")
    loaded = load_spec(gen_project(no_judge))
    assert loaded.get("filters.judge") is None  # off by default


BAD = [
    ("min_score above 1", lambda s: s["filters"]["judge"].update(min_score=1.5), "filters.judge.min_score", "<= 1"),
    ("typo", lambda s: s["filters"]["judge"].update(critera="x"), "filters.judge.critera", "did you mean 'criteria'"),
    (
        "nothing to judge by",
        lambda s: s["filters"]["judge"].pop("evaluation_steps"),
        "filters.judge",
        "criteria or evaluation_steps",
    ),
    (
        "simulated without settings",
        lambda s: s["evaluation"]["judge"].pop("simulated"),
        "evaluation.judge",
        "simulated section",
    ),
    (
        "missing key file",
        lambda s: s["filters"]["judge"]["simulated"].update(answers="data/nope.jsonl"),
        "filters.judge.simulated.answers",
        "does not exist",
    ),
    (
        "bad provider",
        lambda s: s["filters"]["judge"].update(provider="openia"),
        "filters.judge.provider",
        "did you mean 'openai'",
    ),
    ("generation needs a judge", lambda s: s.pop("evaluation"), "evaluation", "evaluation.judge"),
]


@pytest.mark.parametrize("what, mutate, path, words", BAD, ids=[b[0] for b in BAD])
def test_bad_judge_specs_are_refused_naming_the_key(gen_project, what, mutate, path, words):
    spec = gen_spec()
    mutate(spec)
    file = gen_project(spec)
    with pytest.raises(SpecError) as info:
        load_spec(file)
    assert [(i.path, words in i.message) for i in info.value.issues] == [(path, True)], [
        str(i) for i in info.value.issues
    ]
    result = CliRunner().invoke(main, ["validate", str(file)])
    assert result.exit_code == 2 and path in result.output


def test_inline_judge_key_is_refused(gen_project):
    spec = gen_spec()
    spec["filters"]["judge"]["api_key"] = "sk-" + "z" * 40
    with pytest.raises(SpecError) as info:
        load_spec(gen_project(spec))
    assert any(i.path == "filters.judge.api_key" for i in info.value.issues)
    assert all("z" * 20 not in str(i) for i in info.value.issues)


def test_simulated_verdicts_follow_the_key_with_set_accuracy_and_seed():
    key = {question(c): KeyEntry(cap, (alt,)) for c, cap, alt in CAPITALS}
    assert answer_is_right("  paris. ", KeyEntry("Paris", ("Lyon",)))
    assert not answer_is_right("Lyon", KeyEntry("Paris", ("Lyon",)))
    assert answer_is_right('{"a": 1}', KeyEntry({"a": 1}))
    pairs = [(question(c), ans) for c, cap, alt in CAPITALS for ans in (cap, alt)]
    perfect = [verdict(key, t, o, 1.0, seed=1).score for t, o in pairs]
    assert perfect[0::2] == [s for s in perfect[0::2] if s >= 8] and all(s <= 3 for s in perfect[1::2])
    many = [(question(c), f"{ans} {k}") for k in range(40) for c, cap, alt in CAPITALS for ans in (cap,)]
    noisy = [verdict(key, t, o.rsplit(" ", 1)[0], 0.7, seed=k).score >= 5 for k, (t, o) in enumerate(many)]
    assert 0.6 < sum(noisy) / len(noisy) < 0.8  # about 70% of right answers judged right
    again = [verdict(key, t, o.rsplit(" ", 1)[0], 0.7, seed=k).score >= 5 for k, (t, o) in enumerate(many)]
    assert noisy == again
    assert verdict(key, "not in the key", "x", 1.0, 1).score == 5


def test_deepeval_model_routes_each_request_through_the_cache(tmp_path, monkeypatch):
    """CachedJudgeModel as a plain DeepEval model: GEval.measure answers through answer_all and the cache."""
    monkeypatch.chdir(tmp_path)
    write_rows(
        tmp_path / "data/key.jsonl",
        [{"text": question(c), "label": cap, "alternatives": [alt]} for c, cap, alt in CAPITALS],
    )
    from distillbuild.deepeval_env import quiet_deepeval
    from distillbuild.endpoints.standin.sections import judge_endpoint_id
    from distillbuild.llm.cache import TeacherCache
    from distillbuild.llm.judge import judge_settings as settings_for_judge
    from distillbuild.llm.judge import with_defaults

    quiet_deepeval()
    from deepeval.metrics import GEval
    from deepeval.test_case import LLMTestCase, SingleTurnParams

    from distillbuild.llm.judge_model import CachedJudgeModel

    section = with_defaults(judge_section())
    cache = TeacherCache(tmp_path / "cache/teacher.sqlite")
    with judge_server_from_section(section, tmp_path) as server:
        assert isinstance(server.teacher, SimulatedJudge)
        settings = settings_for_judge(section, server.base_url, judge_endpoint_id(section, tmp_path), "k")
        scores = []
        for _ in range(2):
            metric = GEval(
                name="capital",
                evaluation_steps=STEPS,
                model=CachedJudgeModel(settings, cache),
                evaluation_params=[SingleTurnParams.INPUT, SingleTurnParams.ACTUAL_OUTPUT],
                async_mode=False,
            )
            scores.append(
                (
                    metric.measure(LLMTestCase(input=question("Japan"), actual_output="Tokyo"), _show_indicator=False),
                    metric.measure(LLMTestCase(input=question("Japan"), actual_output="Osaka"), _show_indicator=False),
                )
            )
        assert server.requests_served == 2  # the second metric's model found both answers in the cache
    assert scores[0] == scores[1]
    assert scores[0][0] >= 0.75 and scores[0][1] <= 0.35
    cache.close()


def test_simulated_server_recognises_geval_prompts_only():
    geval = {
        "messages": [
            {
                "role": "user",
                "content": "You are an evaluator. Given ...\nEvaluation Steps:\n1. x\n\n"
                "Test Case:\nInput:\nq \n\nActual Output:\na \n\n\n\nParameters:\nInput",
            }
        ]
    }
    assert geval_kind(geval) == "results"
    assert (
        geval_kind(
            {
                "messages": [
                    {"role": "system", "content": "Classify."},
                    {"role": "user", "content": "You are an evaluator of tickets"},
                ]
            }
        )
        is None
    )
    assert (
        geval_kind(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": "Given an evaluation criteria which outlines how you "
                        "should judge the Input\n\nEvaluation Criteria:\nx",
                    }
                ]
            }
        )
        == "steps"
    )


def test_generation_metrics_on_hand_made_outputs(gen_project):
    spec = load_spec(gen_project(gen_spec()))
    heldout = [{"id": f"h{i}", "text": question(c), "label": cap} for i, (c, cap, _) in enumerate(CAPITALS)]
    gold = [cap for _, cap, _ in CAPITALS]
    alt = [a for _, _, a in CAPITALS]
    student = gold[:8] + alt[8:12] + [None, "  "]  # 8 right, 4 wrong, 2 without an answer
    teacher = gold[:13] + alt[13:]  # 13 right, 1 wrong
    from distillbuild.pipeline.stages.evaluate import evaluate_generation_for_spec

    details: list = []
    logs: list[str] = []
    metrics = evaluate_generation_for_spec(spec, heldout, student, teacher, details=details, log=logs.append)
    assert metrics["heldout_rows"] == 14
    assert metrics["geval_pass_rate"] == round(8 / 14, 6)
    assert metrics["teacher_geval_pass_rate"] == round(13 / 14, 6)
    assert metrics["student_missing"] == 2 and metrics["teacher_missing"] == 0
    s = [d["student_score"] for d in details]
    t = [d["teacher_score"] for d in details]
    assert all(x >= 0.75 for x in s[:8]) and all(x <= 0.35 for x in s[8:12]) and s[12:] == [0.0, 0.0]
    assert metrics["geval_mean"] == pytest.approx(sum(s) / 14, abs=1e-6)
    assert metrics["teacher_geval_mean"] == pytest.approx(sum(t) / 14, abs=1e-6)
    assert metrics["retention"] == pytest.approx(metrics["geval_mean"] / metrics["teacher_geval_mean"], abs=1e-5)
    assert metrics["retention_ci_low"] <= metrics["retention"] <= metrics["retention_ci_high"]
    assert metrics["judge"]["calls"]["billed"] == 12 + 14 - 8  # the student's 8 right answers equal the teacher's
    assert metrics["judge_simulated"] is True and any("SIMULATED" in line for line in logs)
    from distillbuild.metric_names import METRICS_BY_TASK

    # The evaluate stage adds the student's latency and both costs (tests/test_generation_eval.py).
    stage_adds = {"latency_p50_ms", "latency_p95_ms", "teacher_cost_per_1k_usd", "student_cost_per_1k_usd"}
    assert set(METRICS_BY_TASK["generation"]) - stage_adds <= set(metrics)
    again = evaluate_generation_for_spec(spec, heldout, student, teacher, log=logs.append)
    assert again["judge"]["calls"]["billed"] == 0 and again["geval_mean"] == metrics["geval_mean"]
    assert again["judge_cost_usd"] == 0


def test_judge_after_a_simulated_teacher_run(gen_project):
    """End to end on the stand-ins: the teacher answers (80% right), the judge drops its wrong answers."""
    root = gen_project.root
    spec = load_spec(gen_project(gen_spec()))
    assert run_stage("teacher", spec) == 0
    answers = [json.loads(l) for l in (root / "build/teacher/answers.jsonl").open()]
    key = load_answer_key(root / "data/key.jsonl")
    wrong = sorted(r["id"] for r in answers if not answer_is_right(r["answer"], key[r["text"]]))
    assert wrong  # an 80%-accurate teacher gets some of the 10 wrong
    assert run_stage("filter", spec) == 0
    rejected = read(root, "rejected.jsonl")
    assert sorted(r["id"] for r in rejected if r["reason"] == "judge_low_score") == wrong
