"""teacher.reasoning: the teacher's rationale recorded beside its answer, in the prompt (a last
line after a marker) or from a reasoning model's own field; the answer read at its own tokens;
the filter drops rows with no rationale, no answer line, or an answer line that disagrees with
the soft label. Through the stand-in teacher over real HTTP, and the stages."""

from __future__ import annotations

import json
import math

import yaml
from conftest import RepoShell, base_spec, write_rows

from distillbuild.curate.filters import FilterConfig, curate
from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.protocol.prompts import system_prompt
from distillbuild.protocol.reasoning import split_reply
from distillbuild.spec import load_spec
from distillbuild.spec.model import Reasoning

PROMPT = Reasoning(mode="prompt", marker="Answer:", instruction="Think step by step.")
FIELD = Reasoning(mode="field", marker="Answer:", instruction="unused")


def _lp(*pairs):
    return {"content": [{"token": t, "logprob": math.log(p), "top_logprobs": []} for t, p in pairs]}


def test_a_reply_splits_into_rationale_and_the_answer_read_at_its_own_tokens():
    content = "The card never came.\nSo: answer: not this one.\nAnswer: billing"
    logprobs = _lp(("The card never came.\nSo: answer: not this one.\nAnswer:", 0.9), (" ", 0.99), ("billing", 0.7))
    split = split_reply({"content": content}, logprobs, PROMPT)
    assert split.rationale == "The card never came.\nSo: answer: not this one."  # the marker's last occurrence
    assert split.answer == "billing" and [t["token"] for t in split.logprobs["content"]] == ["billing"]
    assert split_reply({"content": "I think it is billing."}, None, PROMPT).answer is None
    field = split_reply({"content": "refund", "reasoning_content": " Money back. "}, None, FIELD)
    assert (field.rationale, field.answer) == ("Money back.", "refund")
    assert (
        split_reply({"content": "refund", "reasoning": "Ollama's name for it"}, None, FIELD).rationale
        == "Ollama's name for it"
    )
    prompt = system_prompt(base_task(), PROMPT)
    assert prompt.endswith("Think step by step. Then write the answer alone on a last line that starts with `Answer:`.")
    assert "Answer:" not in system_prompt(base_task())  # the student's prompt never asks for reasoning


def base_task():
    from distillbuild.spec.model import Task

    return Task(
        type="classification", instruction="Classify the ticket.", labels=("billing", "refund"), output_schema=None
    )


def test_the_filter_drops_rows_without_reasoning_or_answer_or_whose_answer_disagrees():
    cfg = FilterConfig(labels=("billing", "refund"))
    rows = [
        {
            "id": "ok",
            "text": "a",
            "answer": "billing",
            "rationale": "why",
            "label_probs": {"billing": 0.8, "refund": 0.2},
        },
        {"id": "no-why", "text": "b", "answer": "billing", "rationale": "", "label_probs": {"billing": 0.9}},
        {"id": "no-line", "text": "c", "answer": None, "rationale": "it could be refund", "raw_answer": "it could be"},
        {
            "id": "disagrees",
            "text": "d",
            "answer": "refund",
            "rationale": "why",
            "label_probs": {"billing": 0.6, "refund": 0.4},
        },
        {"id": "cut", "text": "e", "answer": None, "rationale": "long", "finish_reason": "length"},
        {
            "id": "tie",
            "text": "g",
            "answer": "refund",
            "rationale": "why",
            "label_probs": {"billing": 0.5, "refund": 0.5},
        },
        {"id": "plain", "text": "f", "answer": "refund"},
    ]  # no teacher.reasoning: no reasoning checks
    kept, rejected, report = curate(rows, cfg)
    assert [r["id"] for r in kept] == ["ok", "tie", "plain"] and kept[0]["rationale"] == "why"
    assert {r["id"]: r["reason"] for r in rejected} == {
        "no-why": "no_rationale",
        "no-line": "no_final_answer",
        "disagrees": "rationale_disagrees",
        "cut": "truncated",
    }


def _project(project, reasoning: dict | None, simulated_reasoning: bool = False):
    root = project.root
    labels = base_spec()["task"]["labels"]
    rows = [
        {"id": f"r{i}", "text": f"ticket {i}: a customer writes about {labels[i % 4]} matters, case {i * 7}"}
        for i in range(120)
    ]
    write_rows(root / "data/inputs.jsonl", rows)
    write_rows(
        root / "data/key.jsonl",
        [{"text": r["text"], "label": labels[i % 4]} for i, r in enumerate(rows)]
        + [{"text": "held out", "label": "bug"}],
    )
    spec = base_spec()
    spec["teacher"].update(top_logprobs=4, max_tokens=256, **({"reasoning": reasoning} if reasoning else {}))
    spec["teacher"]["simulated"]["reasoning"] = simulated_reasoning
    spec["filters"] = {"min_confidence": 0.0, "dedup": {"exact": True}, "min_rows_per_label": 0}
    return project(spec)


def test_the_teacher_stage_records_rationales_in_prompt_mode(project, monkeypatch, tmp_path):
    path = _project(project, {"mode": "prompt"})
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    loaded = load_spec(path)
    assert run_stage("teacher", loaded) == 0 and run_stage("filter", loaded) == 0
    rows = [json.loads(line) for line in (project.root / "build/teacher/answers.jsonl").open()]
    answered = [r for r in rows if r["answer"] is not None]
    assert len(answered) >= 110 and all(r["answer"] in base_spec()["task"]["labels"] for r in answered)
    assert all(r["raw_answer"].endswith(f"Answer: {r['answer']}") for r in answered)
    assert sum(bool(r["rationale"]) for r in rows) >= 110
    assert all(r["confidence"] is not None and r["label_probs"] for r in answered)  # read at the answer's token
    report = read_report(project.root / "build/filter/report.json")["by_reason"]
    assert report["no_rationale"] == sum(not r["rationale"] and r["answer"] is not None for r in rows) > 0
    assert report["no_final_answer"] == sum(r["answer"] is None for r in rows) > 0
    kept = [json.loads(line) for line in (project.root / "build/filter/kept.jsonl").open()]
    assert kept and all(r["rationale"] for r in kept)


def test_a_reasoning_models_separate_field_and_a_cache_that_tells_modes_apart(project, monkeypatch, tmp_path):
    path = _project(project, {"mode": "field"}, simulated_reasoning=True)
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    assert run_stage("teacher", load_spec(path)) == 0
    rows = [json.loads(line) for line in (project.root / "build/teacher/answers.jsonl").open()]
    assert all(r["answer"] in base_spec()["task"]["labels"] for r in rows)  # the content is the answer
    assert sum(r["rationale"].startswith("The message reads") for r in rows) >= 110
    # The same inputs asked in prompt mode are new requests (the system prompt differs): no cache hit.
    path = _project(project, {"mode": "prompt"}, simulated_reasoning=True)
    assert run_stage("teacher", load_spec(path)) == 0
    calls = read_report(project.root / "build/teacher/report.json")["calls"]
    assert calls["billed"] == 121 and calls["from_cache"] == 0


def test_changing_teacher_reasoning_rebuilds_from_the_teacher_on(tmp_path):
    import yaml

    sh = RepoShell(tmp_path / "repo", DISTILL_CACHE_DIR=str(tmp_path / "cache"))
    sh.root.mkdir()
    write_rows(sh.root / "data/inputs.jsonl", [{"id": f"r{i}", "text": f"ticket {i} about billing"} for i in range(12)])
    write_rows(sh.root / "data/heldout.jsonl", [{"id": "h1", "text": "held out", "label": "bug"}])
    write_rows(
        sh.root / "data/key.jsonl", [{"text": f"ticket {i} about billing", "label": "billing"} for i in range(12)]
    )
    spec = base_spec()
    (sh.root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (sh.root / ".gitignore").write_text(".distill/\n")
    sh.init_repo()
    sh("distill", "compile")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "v1")
    sh("dvc", "repro", "filter")
    assert json.loads(sh("dvc", "status", "--json").stdout).keys().isdisjoint({"teacher", "filter"})
    spec["teacher"].update(reasoning={"mode": "prompt"}, max_tokens=256)
    (sh.root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    stale = json.loads(sh("dvc", "status", "--json").stdout)
    assert "teacher" in stale and any("teacher" in str(change) for change in stale["teacher"]), stale


def _reasoning_spec(student_reasoning: str) -> dict:
    spec = base_spec()
    spec["teacher"].update(top_logprobs=4, max_tokens=256, reasoning={"mode": "prompt"})
    spec["filters"] = {"min_confidence": 0.0, "dedup": {"exact": True}, "min_rows_per_label": 0}
    spec["student"] = {
        "kind": "causal-lm",
        "base_model": "models/tiny",
        "trainer": "axolotl",
        "reasoning": student_reasoning,
    }
    return spec


def test_the_dataset_trains_on_traces_or_on_two_step_by_step_tasks(project, monkeypatch, tmp_path):
    (project.root / "models/tiny").mkdir(parents=True)
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    loaded = load_spec(project(_reasoning_spec("trace")))
    for stage in ("teacher", "filter", "dataset"):
        assert run_stage(stage, loaded) == 0
    kept = {r["id"]: r for r in map(json.loads, (project.root / "build/filter/kept.jsonl").open())}
    train = [json.loads(line) for line in (project.root / "build/dataset/train.jsonl").open()]
    assert train
    for row in train:
        answer = row["messages"][-1]["content"]
        assert answer == f"{kept[row['id']]['rationale']}\nAnswer: {row['label']}"
        assert "Answer:" not in row["messages"][0]["content"]  # the student is asked the bare prompt

    loaded = load_spec(project(_reasoning_spec("step_by_step")))
    assert run_stage("dataset", loaded) == 0
    rows = [json.loads(line) for line in (project.root / "build/dataset/train.jsonl").open()]
    rows += [json.loads(line) for line in (project.root / "build/dataset/val.jsonl").open()]
    by_task = {}
    for row in rows:
        base, task = row["id"].split("#")
        by_task.setdefault(base, {})[task] = row
    assert set(by_task) == set(kept) and all(set(t) == {"label", "rationale"} for t in by_task.values())
    one = next(iter(by_task.values()))
    assert one["label"]["messages"][-2]["content"].startswith("[label] ")
    assert one["rationale"]["messages"][-2]["content"].startswith("[rationale] ")
    assert one["rationale"]["messages"][-1]["content"] == kept[one["label"]["id"].split("#")[0]]["rationale"]


def test_reasoning_students_need_a_causal_lm_and_a_reasoning_teacher(project):
    from distillbuild.errors import SpecError

    for change, key in (
        ({"student": {"kind": "encoder-classifier"}}, "student.reasoning"),
        ({"teacher": {"reasoning": None}}, "student.reasoning"),
        ({"export": {"format": "gguf"}, "student": {"reasoning": "step_by_step"}}, "export"),
    ):
        spec = _reasoning_spec("trace")
        for section, values in change.items():
            if section == "export":
                spec["export"] = values
            else:
                spec[section].update(values)
                spec[section] = {k: v for k, v in spec[section].items() if v is not None}
        (project.root / "models/tiny").mkdir(parents=True, exist_ok=True)
        try:
            load_spec(project(spec))
        except SpecError as err:
            assert key in [i.path for i in err.issues], err.issues
        else:
            raise AssertionError(f"{change} was accepted")


class _Scripted:
    """A causal student's replies, as generate_scored returns them (text, logprobs)."""

    def __init__(self, replies):
        self.replies, self.asked = replies, []

    def generate_scored(self, conversations):
        self.asked += conversations
        return [
            (text, _lp((text[: text.rfind(":") + 1], 0.9), (text[text.rfind(":") + 1 :], 0.8)) if ":" in text else None)
            for text in self.replies[: len(conversations)]
        ]


def test_a_trace_student_is_read_at_its_answer_line_and_a_step_by_step_one_asked_for_its_label():
    from distillbuild.evaluate.causal_student import CausalClassifier

    task = base_task()
    student = _Scripted(["It asks for money back.\nAnswer: refund", "It is about an invoice, so billing."])
    classifier = CausalClassifier(student, task, "trace", "Answer:")
    assert classifier.predict(["a", "b"]) == ["refund", None]  # no answer line: unparsable, not "billing"
    assert classifier.last_answers[0].startswith("It asks") and abs(classifier.last_confidence[0] - 0.8) < 1e-6
    step = _Scripted(["billing"])
    CausalClassifier(step, task, "step_by_step").predict(["my invoice"])
    assert step.asked[0][-1]["content"] == "[label] my invoice"


def test_the_answer_line_is_found_in_any_script_and_in_the_tokens_own_text():
    # Casefolding before searching would move offsets: ß becomes ss.
    split = split_reply({"content": "Die Straße heißt Große Gasse; kein Spaß.\nAnswer: refund"}, None, PROMPT)
    assert (split.rationale, split.answer) == ("Die Straße heißt Große Gasse; kein Spaß.", "refund")
    # A student's text is stripped; its tokens are not: the answer's tokens are found in the tokens.
    tokens = _lp(("\n", 0.9), ("Because", 0.9), (" x", 0.9), ("\n", 0.9), ("Answer", 0.9), (":", 0.9), (" refund", 0.6))
    split = split_reply({"content": "Because x\nAnswer: refund"}, tokens, PROMPT)
    assert [t["token"] for t in split.logprobs["content"]] == [" refund"]


def test_reasoning_specs_are_checked(project):
    from distillbuild.errors import SpecError

    def issues(spec):
        try:
            load_spec(project(spec))
        except SpecError as err:
            return {i.path for i in err.issues}
        return set()

    spec = base_spec()
    spec["teacher"]["reasoning"] = {"mode": "prompt"}  # max_tokens left at 16
    assert "teacher.max_tokens" in issues(spec)
    spec["teacher"].update(max_tokens=128, reasoning={"mode": "field"})  # a stand-in that does not reason
    assert "teacher.simulated.reasoning" in issues(spec)
    spec = _reasoning_spec("trace")
    (project.root / "models/tiny").mkdir(parents=True, exist_ok=True)
    write_rows(project.root / "data/human.jsonl", [{"id": "p1", "text": "a person's ticket", "label": "bug"}])
    spec["data"]["human"] = "data/human.jsonl"
    assert "data.human" in issues(spec)


def test_examples_show_their_reasoning_to_a_reasoning_teacher_and_must_have_some(project):
    from distillbuild.protocol.prompts import messages_for
    from distillbuild.spec.inputs import Example

    shown = Example("my invoice is wrong", "billing", "It is about a charge.")
    turns = messages_for(base_task(), "new ticket", [shown], PROMPT)
    assert turns[2] == {"role": "assistant", "content": "It is about a charge.\nAnswer: billing"}
    assert messages_for(base_task(), "new ticket", [shown])[2]["content"] == "billing"  # no reasoning asked
    assert messages_for(base_task(), "new ticket", [shown], FIELD)[2]["content"] == "billing"  # the model's own field

    def issues(spec):
        try:
            load_spec(project(spec))
        except SpecError as err:
            return {i.path: i.message for i in err.issues}
        return {}

    from distillbuild.errors import SpecError

    spec = base_spec()
    spec["teacher"].update(max_tokens=128, reasoning={"mode": "prompt"})
    spec["task"]["examples"] = [
        {"input": "my invoice is wrong", "answer": "billing", "rationale": "A charge."},
        {"input": "the app crashes", "answer": "bug"},
    ]
    assert list(issues(spec)) == ["task.examples[1].rationale"]
    write_rows(project.root / "data/examples.jsonl", [{"text": "the app crashes", "label": "bug"}])
    spec["task"]["examples"] = "data/examples.jsonl"
    assert 'lack a "rationale"' in issues(spec)["task.examples"]
    write_rows(
        project.root / "data/examples.jsonl", [{"text": "the app crashes", "label": "bug", "rationale": "It fails."}]
    )
    assert issues(spec) == {}
    spec["teacher"]["reasoning"] = None
    spec["teacher"] = {k: v for k, v in spec["teacher"].items() if v is not None}
    write_rows(project.root / "data/examples.jsonl", [{"text": "the app crashes", "label": "bug"}])
    assert issues(spec) == {}  # no reasoning asked: no rationale needed


def test_a_trace_student_exports_and_its_export_reads_the_answer_line_settings(project):
    from distillbuild.pipeline.compile import render

    (project.root / "models/tiny").mkdir(parents=True, exist_ok=True)
    spec = _reasoning_spec("trace")
    spec["export"] = {"format": "gguf"}
    export = yaml.safe_load(render(load_spec(project(spec))))["stages"]["export"]
    assert {"student.reasoning", "teacher.reasoning", "teacher.max_tokens"} <= set(export["params"][0]["distill.yaml"])
    spec["student"]["reasoning"] = "answer"  # an answer-only student's export reads neither
    export = yaml.safe_load(render(load_spec(project(spec))))["stages"]["export"]
    assert not {"student.reasoning", "teacher.reasoning", "teacher.max_tokens"} & set(
        export["params"][0]["distill.yaml"]
    )


def test_explain_mode_asks_why_after_the_plain_answers_which_come_from_the_cache(project, monkeypatch, tmp_path):
    """Rationalization: the plain requests (a plain run's answers are reused), then each labelled
    training input's conversation continued with its answer and the question why."""
    from click.testing import CliRunner

    from distillbuild.cli import main

    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    plain = _project(project, None)
    assert run_stage("teacher", load_spec(plain)) == 0
    before = [json.loads(line) for line in (project.root / "build/teacher/answers.jsonl").open()]
    path = _project(project, {"mode": "explain", "max_tokens": 64})
    estimate = json.loads(CliRunner().invoke(main, ["estimate", str(path), "--json"]).output)
    assert estimate["to_call"] == 0 and estimate["explanations"]["to_call"] == 120  # the answers are cached
    assert run_stage("teacher", load_spec(path)) == 0 and run_stage("filter", load_spec(path)) == 0
    calls = read_report(project.root / "build/teacher/report.json")["calls"]
    labelled = [r for r in before if r["answer"] in base_spec()["task"]["labels"]]
    assert calls["billed"] == len(labelled) and calls["from_cache"] == 121  # 120 inputs and the held-out row
    rows = [json.loads(line) for line in (project.root / "build/teacher/answers.jsonl").open()]
    assert [(r["answer"], r["label_probs"]) for r in rows] == [(r["answer"], r["label_probs"]) for r in before]
    for row in rows[:5]:  # the stand-in explains the answer it was given, quoting the input
        assert row["text"].split()[0] in row["rationale"] and f"So the category is {row['answer']}." in row["rationale"]
    heldout = json.loads((project.root / "build/teacher/heldout_answers.jsonl").read_text().splitlines()[0])
    assert "rationale" not in heldout  # held-out rows measure the answers: never explained
    responses = [json.loads(line) for line in (project.root / "build/teacher/responses.jsonl").open()]
    assert len(responses) == 121 + len(labelled)  # a fresh clone reproduces both kinds of call
    kept = [json.loads(line) for line in (project.root / "build/filter/kept.jsonl").open()]
    assert kept and all(r["rationale"] for r in kept)
    again = json.loads(CliRunner().invoke(main, ["estimate", str(path), "--json"]).output)
    assert again["explanations"]["to_call"] == 0  # read with the real answers: every explanation is cached
    by_reason = read_report(project.root / "build/filter/report.json")["by_reason"]
    assert by_reason.get("no_rationale", 0) == sum(r.get("rationale") == "" for r in rows)  # empty ones dropped


def test_an_explanation_is_the_conversation_continued_and_a_cut_one_is_truncated():
    from distillbuild.protocol.prompts import explain_messages
    from distillbuild.spec.inputs import Example

    explain = Reasoning(mode="explain", marker="Answer:", instruction=None, max_tokens=64)
    shown = Example("my invoice is wrong", "billing", "It is about a charge.")
    messages = explain_messages(base_task(), "refund me", "refund", [shown], explain)
    why = "Explain in a few sentences why that is the answer."
    assert [(m["role"], m["content"]) for m in messages[1:]] == [
        ("user", "my invoice is wrong"),
        ("assistant", "billing"),
        ("user", why),
        ("assistant", "It is about a charge."),
        ("user", "refund me"),
        ("assistant", "refund"),
        ("user", why),
    ]
    assert "Answer:" not in messages[0]["content"]  # the answers were plain: so is the system prompt
    cfg = FilterConfig(labels=("billing", "refund"))
    rows = [
        {"id": "cut", "text": "a", "answer": "billing", "rationale": "It is about", "rationale_truncated": True},
        {"id": "failed", "text": "b", "answer": "refund", "rationale": "", "rationale_error": "timeout"},
        {"id": "sorry", "text": "c", "answer": "refund", "rationale": "I'm sorry, but I can't help with that."},
    ]
    _, rejected, _ = curate(rows, cfg)
    assert {r["id"]: r["reason"] for r in rejected} == {
        "cut": "truncated",
        "failed": "no_rationale",
        "sorry": "refusal",
    }
    assert "timeout" in rejected[1]["detail"]


def test_the_stand_in_explains_only_when_asked_its_explain_instruction():
    from distillbuild.endpoints.standin.teacher import KeyEntry, SimulatedTeacher, completion_body

    why = "Explain in a few sentences why that is the answer."
    key = {"my invoice is wrong": KeyEntry("billing", ())}
    teacher = SimulatedTeacher(key, ["billing", "refund"], 1.0, 1, explain_instruction=why)
    few_shot = [
        {"role": "user", "content": "my invoice is wrong"},
        {"role": "assistant", "content": "billing"},
        {"role": "user", "content": "an input the key does not know"},
    ]
    plain = completion_body(teacher, {"messages": few_shot}, "sim", 1)["choices"][0]["message"]["content"]
    assert plain in ("billing", "refund")  # a few-shot request is answered, not explained
    asked = completion_body(teacher, {"messages": few_shot[:2] + [{"role": "user", "content": why}]}, "sim", 2)
    assert "So the category is billing." in asked["choices"][0]["message"]["content"]
