"""Logit distillation data: token ids from the teacher, the vocabulary check, Axolotl KD rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import LABELS, base_spec
from tiny_llama import train_bpe_tokenizer

from distillbuild.errors import SpecError
from distillbuild.measurements import read_report
from distillbuild.pipeline.runner import run_stage
from distillbuild.pipeline.stages.dataset import kd_rows
from distillbuild.protocol.token_logprobs import kd_targets
from distillbuild.spec import load_spec


def make_tokenizer(path: Path, extra_words: tuple[str, ...] = ()) -> Path:
    """A small BPE tokenizer trained here, saved as a Hugging Face tokenizer directory."""
    from transformers import PreTrainedTokenizerFast

    corpus = [f"ticket number {i} about {LABELS[i % 4]}" for i in range(40)] + list(LABELS) + list(extra_words)
    tok = train_bpe_tokenizer(corpus * 5, 300, special_tokens=["<unk>", "<|eot|>", "<pad>"])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|eot|>", pad_token="<pad>", unk_token="<unk>")
    # Like ChatML, the template writes a newline after the end-of-turn token: a position the
    # teacher never generated, which KD rows must still cover to stay aligned to the end.
    fast.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}<|eot|>\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    fast.save_pretrained(str(path))
    return path


def kd_spec(**teacher: object) -> dict:
    spec = base_spec()
    spec["teacher"].update(top_logprobs=5, token_ids=True, tokenizer="./tok", **teacher)
    spec["student"] = {
        "kind": "causal-lm",
        "base_model": "./tok",
        "trainer": "axolotl",
        "max_length": 256,
        "kd": {"mode": "logits"},
    }
    spec["filters"] = {"min_confidence": 0, "dedup": {"exact": True}, "min_rows_per_label": 0}
    return spec


def issue_paths(project, spec: dict) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        load_spec(project(spec))
    return {i.path: i.message for i in info.value.issues}


def test_kd_targets_reads_vllm_token_ids_and_refuses_plain_tokens():
    ids = {
        "content": [
            {
                "token": "token_id:7",
                "logprob": -0.1,
                "top_logprobs": [
                    {"token": "token_id:7", "logprob": -0.1},
                    {"token": "token_id:9", "logprob": -2.5},
                    {"token": "token_id:3", "logprob": -4.0},
                ],
            },
            {
                "token": "token_id:1",
                "logprob": -0.01,
                "top_logprobs": [{"token": "token_id:1", "logprob": -0.01}, {"token": "token_id:4", "logprob": -5.0}],
            },
        ]
    }
    out = kd_targets(ids)
    assert out == {"token_ids": [7, 1], "target_token_ids": [[7, 9], [1, 4]], "logprobs": [[-0.1, -2.5], [-0.01, -5.0]]}
    plain = {
        "content": [{"token": "billing", "logprob": -0.1, "top_logprobs": [{"token": "billing", "logprob": -0.1}]}]
    }
    assert kd_targets(plain) is None
    assert kd_targets(None) is None


def test_gpt4o_teacher_for_logit_kd_is_refused_with_the_reason(project):
    spec = kd_spec()
    spec["teacher"] = {"provider": "openai", "model": "gpt-4o", "api_key_env": "OPENAI_API_KEY", "top_logprobs": 5}
    spec["student"]["base_model"] = "meta-llama/Llama-3.1-8B-Instruct"
    issues = issue_paths(project, spec)
    assert "vLLM" in issues["teacher.model"] and "gpt-4o's tokens are not Llama 3's" in issues["teacher.model"]


def test_teacher_families_decide_the_vocabulary_when_nothing_is_local(project):
    spec = kd_spec()
    spec["teacher"] = {
        "provider": "openai",
        "model": "meta-llama/Llama-3.1-70B-Instruct",
        "base_url": "http://gpu:8000/v1",
        "api_key_env": "VLLM_KEY",
        "top_logprobs": 5,
        "token_ids": True,
    }
    spec["student"]["base_model"] = "meta-llama/Llama-3.1-8B-Instruct"
    load_spec(project(spec))  # one vocabulary: accepted
    spec["teacher"]["model"] = "Qwen/Qwen2.5-72B-Instruct"
    assert "does not share the student's vocabulary" in issue_paths(project, spec)["teacher.model"]
    spec["teacher"]["model"] = "acme/house-model"
    assert "cannot tell" in issue_paths(project, spec)["teacher.model"]
    spec["teacher"].update(model="meta-llama/Llama-3.1-70B-Instruct", token_ids=False)
    assert "return_tokens_as_token_ids" in issue_paths(project, spec)["teacher.token_ids"]


def test_local_tokenizers_are_compared_token_by_token(project):
    root = project.root
    make_tokenizer(root / "tok")
    make_tokenizer(root / "other", extra_words=("refund refund requested", "loginlogin billingbilling") * 20)
    spec = kd_spec()
    spec["teacher"]["tokenizer"] = "./other"
    assert "tokens differ" in issue_paths(project, spec)["teacher.tokenizer"]
    spec["teacher"]["tokenizer"] = None
    assert "teacher.tokenizer" in issue_paths(project, spec)


def test_simulated_teacher_to_axolotl_kd_rows(project, monkeypatch, tmp_path):
    """teacher -> filter -> dataset with a simulated teacher that returns token ids: every row
    carries per-position top-k ids and logprobs that spell the answer plus end-of-turn."""
    from transformers import AutoTokenizer

    root = project.root
    make_tokenizer(root / "tok")
    monkeypatch.setenv("DISTILL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(root)
    spec = load_spec(project(kd_spec()))
    for stage in ("teacher", "filter", "dataset"):
        assert run_stage(stage, spec) == 0
    answers = [json.loads(l) for l in (root / "build/teacher/answers.jsonl").open()]
    assert all(a["kd"]["token_ids"] for a in answers)
    report = read_report(root / "build/dataset/report.json")
    assert report["format"].startswith("axolotl KD") and report["kd_missing"] == 0 and report["kd_misaligned"] == 0
    tok = AutoTokenizer.from_pretrained(str(root / "tok"))
    rows = [json.loads(l) for p in ("train", "val") for l in (root / f"build/dataset/{p}.jsonl").open()]
    assert len(rows) == report["train"] + report["val"] == 12
    newline = tok.encode("\n", add_special_tokens=False)
    assert len(newline) == 1
    for row in rows:
        answer = row["messages"][-1]["content"]
        ids = tok.encode(answer, add_special_tokens=False) + [tok.eos_token_id]
        # The teacher's positions, then the template's newline after end of turn, padded as certain.
        assert len(row["logprobs"]) == len(row["target_token_ids"]) == len(ids) + 1
        assert row["target_token_ids"][-1][0] == newline[0] and row["logprobs"][-1][0] == 0.0
        assert all(len(p) == 5 for p in row["target_token_ids"]) and all(len(p) == 5 for p in row["logprobs"])
        assert all(0 <= i < len(tok) for p in row["target_token_ids"] for i in p)
        # The generated token is among the alternatives at its position, and they are sorted.
        assert all(i in top for i, top in zip(ids, row["target_token_ids"]))
        assert all(lp == sorted(lp, reverse=True) for lp in row["logprobs"])
        # At the first position, the competing labels' first tokens carry mass.
        firsts = {tok.encode(l, add_special_tokens=False)[0] for l in LABELS}
        assert len(firsts & set(row["target_token_ids"][0])) >= 2


def test_rows_whose_tokens_do_not_spell_the_text_are_dropped(project, monkeypatch, tmp_path):
    root = project.root
    make_tokenizer(root / "tok")
    monkeypatch.chdir(root)
    spec = load_spec(project(kd_spec()))
    good = {
        "id": "a",
        "text": "t",
        "label": "refund",
        "teacher_text": "refund",
        "kd": {"token_ids": None, "target_token_ids": [[1]], "logprobs": [[0.0]]},
    }
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(root / "tok"))
    good["kd"]["token_ids"] = tok.encode("refund", add_special_tokens=False) + [tok.eos_token_id]
    bad = {**good, "id": "b", "teacher_text": "billing"}  # ids of "refund", text "billing"
    none = {"id": "c", "text": "t", "label": "bug"}
    kept, dropped = kd_rows(spec, [good, bad, none])
    assert [r["id"] for r in kept] == ["a"] and dropped == {"kd_missing": 1, "kd_misaligned": 1}
