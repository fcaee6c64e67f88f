"""teacher.provider: vllm without a GPU: the requests as Ray Data's vLLM processor reads them, its
output rows (built with Ray's own vLLMOutputData, as its engine stage builds them) read back as
the chat completion `vllm serve` answers, soft labels included; Ray Data's own processor config
from the spec; and the spec checks that refuse what the engine cannot do (exit 2, naming the
key). The processor's run over a Ray cluster is in tests/test_ray_engine.py; a run with vLLM
itself needs GPUs (`DISTILL_TEST_VLLM_MODEL`, below)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, write_rows

from distillbuild.llm.vllm_rows import KEY_COLUMN, completion, request_row
from distillbuild.protocol.choice import body_fields
from distillbuild.protocol.softlabels import label_distribution

pytest.importorskip("ray.llm")

LABELS = ["billing", "refund", "login", "bug"]


def _output(generated: list[int], positions: list[dict], text: str, row: dict) -> dict:
    """The engine stage's output row for `row`, as Ray's vLLMOutputData dumps it."""
    from ray.llm._internal.batch.stages.vllm_engine_stage import vLLMOutputData

    out = vLLMOutputData(
        prompt="<|im_start|>user ...",
        prompt_token_ids=list(range(37)),
        num_input_tokens=37,
        generated_tokens=generated,
        generated_text=text,
        num_generated_tokens=len(generated),
        logprobs=positions,
    ).model_dump()
    return {**row, **out}


def test_a_request_carries_the_bodys_sampling_settings_and_constraint():
    body = {"model": "m", "messages": [{"role": "user", "content": "refund me"}], "temperature": 0.0,
            "max_tokens": 8, "logprobs": True, "top_logprobs": 5, "seed": 7,
            **body_fields("guided_choice", LABELS)}  # fmt: skip
    row = request_row("k1", body)
    assert row[KEY_COLUMN] == "k1" and row["messages"] == body["messages"]
    assert row["sampling_params"] == {
        "temperature": 0.0, "max_tokens": 8, "logprobs": 5, "seed": 7, "structured_outputs": {"choice": LABELS}
    }  # fmt: skip
    schema_body = {**body, **body_fields("json_schema", LABELS)}
    del schema_body["guided_choice"]
    structured = request_row("k2", schema_body)["sampling_params"]["structured_outputs"]
    assert json.loads(structured["json"])["properties"]["label"]["enum"] == LABELS
    grammar = request_row("k3", {**body, "guided_choice": None, **body_fields("grammar", LABELS)})
    assert grammar["sampling_params"]["structured_outputs"] == {"grammar": body_fields("grammar", LABELS)["grammar"]}
    plain = request_row("k4", {"messages": body["messages"], "temperature": 1.0, "max_tokens": 4})
    assert plain["sampling_params"] == {"temperature": 1.0, "max_tokens": 4}


def test_an_output_row_reads_as_the_completion_vllm_serve_answers_with_its_soft_labels():
    row = request_row("k", {"messages": [], "temperature": 0, "max_tokens": 4, "logprobs": True, "top_logprobs": 3})
    first = {  # vLLM: the top 3 and the sampled token, each with its rank
        11: {"logprob": math.log(0.70), "rank": 1, "decoded_token": "billing"},
        12: {"logprob": math.log(0.20), "rank": 2, "decoded_token": "refund"},
        13: {"logprob": math.log(0.06), "rank": 3, "decoded_token": "login"},
    }
    end = {
        2: {"logprob": -0.01, "rank": 1, "decoded_token": ""},
        9: {"logprob": -float("inf"), "rank": 2, "decoded_token": "x"},
    }
    answer = completion(_output([11, 2], [first, end], "billing", row), "Qwen/Qwen2.5-7B-Instruct", 4)
    choice = answer["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "billing"} and choice["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": 37, "completion_tokens": 2, "total_tokens": 39}
    tokens = choice["logprobs"]["content"]
    assert [t["token"] for t in tokens] == ["billing", ""]
    assert [t["token"] for t in tokens[0]["top_logprobs"]] == ["billing", "refund", "login"]
    assert tokens[1]["top_logprobs"][1]["logprob"] == -9999.0  # -inf is no JSON number
    json.dumps(answer, allow_nan=False)
    dist, ambiguous = label_distribution(choice["logprobs"], LABELS)
    assert dist is not None and not ambiguous
    assert list(dist) == ["billing", "refund", "login"]
    billing = 0.70 * math.exp(-0.01)  # the answer's path: its first token, then the end of the answer
    assert dist["billing"] == pytest.approx(billing / (billing + 0.26))
    assert dist["refund"] == pytest.approx(0.20 / (billing + 0.26))


def test_a_sampled_token_outside_the_top_is_the_answer_but_not_an_alternative():
    row = request_row("k", {"messages": [], "temperature": 1, "max_tokens": 1, "logprobs": True, "top_logprobs": 2})
    position = {
        21: {"logprob": -0.5, "rank": 1, "decoded_token": "bug"},
        22: {"logprob": -1.2, "rank": 2, "decoded_token": "login"},
        23: {"logprob": -4.0, "rank": 7, "decoded_token": "refund"},  # sampled at temperature 1
    }
    choice = completion(_output([23], [position], "refund", row), "m", 1)["choices"][0]
    token = choice["logprobs"]["content"][0]
    assert token["token"] == "refund" and token["logprob"] == -4.0
    assert [t["token"] for t in token["top_logprobs"]] == ["bug", "login"]
    assert choice["finish_reason"] == "length"  # max_tokens reached


def test_token_ids_are_named_as_vllm_serve_names_them():
    body = {"messages": [], "temperature": 0, "max_tokens": 2, "logprobs": True, "top_logprobs": 1,
            "return_tokens_as_token_ids": True}  # fmt: skip
    row = request_row("k", body)
    position = {31: {"logprob": -0.1, "rank": 1, "decoded_token": "bill"}}
    token = completion(_output([31], [position], "bill", row), "m", 2)["choices"][0]["logprobs"]["content"][0]
    assert token["token"] == "token_id:31" and token["top_logprobs"][0]["token"] == "token_id:31"


def test_the_processor_config_is_ray_datas_own_from_the_spec():
    from ray.data.llm import vLLMEngineProcessorConfig

    from distillbuild.llm.settings import TeacherSettings
    from distillbuild.llm.vllm_ray import engine_config
    from distillbuild.spec.model import VllmEngine

    engine = VllmEngine(replicas=4, tensor_parallel_size=2, batch_size=128, gpu_memory_utilization=0.85,
                        max_model_len=8192, accelerator_type="H100")  # fmt: skip
    model = "meta-llama/Llama-3.1-70B-Instruct"
    settings = TeacherSettings(endpoint_id=f"vllm:{model}", base_url=None, model=model, temperature=0, max_tokens=16,
                               top_logprobs=5, seed=None, concurrency=1, timeout_s=60, max_retries=0,
                               vllm=engine)  # fmt: skip
    config = engine_config(engine, settings)
    assert isinstance(config, vLLMEngineProcessorConfig)
    assert config.model_source == "meta-llama/Llama-3.1-70B-Instruct"
    assert config.concurrency == 4 and config.batch_size == 128 and config.accelerator_type == "H100"
    assert config.should_continue_on_error
    kwargs = config.engine_kwargs
    assert kwargs["tensor_parallel_size"] == 2 and kwargs["max_model_len"] == 8192 and kwargs["max_logprobs"] >= 5
    assert config.runtime_env["env_vars"]["VLLM_NO_USAGE_STATS"] == "1"


def _spec(tmp_path: Path, teacher: dict, execution: dict | None) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    write_rows(tmp_path / "data/inputs.jsonl", [{"id": "a", "text": "x"}])
    write_rows(tmp_path / "data/heldout.jsonl", [{"id": "b", "text": "y", "label": "bug"}])
    spec = yaml.safe_load((ROOT / "distill.yaml").read_text())
    spec["data"] = {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl"}
    spec["teacher"] = {"provider": "vllm", "model": "Qwen/Qwen2.5-7B-Instruct", "vllm": {"replicas": 2}, **teacher}
    spec.pop("execution", None)
    if execution is not None:
        spec["execution"] = execution
    path = tmp_path / "distill.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distillbuild", "validate", str(path)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_a_vllm_teacher_on_ray_validates(tmp_path):
    done = _validate(_spec(tmp_path, {}, {"engine": "ray", "address": "auto"}))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("teacher", "execution", "key", "words"),
    [
        ({}, None, "teacher.provider", "set execution.engine: ray"),
        ({"samples": 3}, {"engine": "ray"}, "teacher.samples", "one answer per row"),
        ({"batch": True}, {"engine": "ray"}, "teacher.batch", "vLLM replicas take the rows directly"),
        ({"vllm": None}, {"engine": "ray"}, "teacher", "provider: vllm needs a teacher.vllm section"),
    ],
)
def test_what_vllm_replicas_cannot_do_is_refused_naming_the_key(tmp_path, teacher, execution, key, words):
    done = _validate(_spec(tmp_path, teacher, execution))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f": {key}" in done.stderr and words in done.stderr, done.stderr


@pytest.mark.skipif(not os.environ.get("DISTILL_TEST_VLLM_MODEL"), reason="needs vLLM, GPUs and a model")
def test_real_vllm_replicas_answer_the_teacher_stage(tmp_path):  # pragma: no cover - GPU machines only
    """On a GPU machine with `pip install 'distillbuild[ray]' vllm`: DISTILL_TEST_VLLM_MODEL=a local
    instruct model's directory. The quickstart's first 40 tickets through two replicas."""
    from conftest import RepoShell

    spec = yaml.safe_load((ROOT / "distill.yaml").read_text())
    rows = [json.loads(line) for line in (ROOT / "data/tickets/inputs.jsonl").read_text().splitlines()][:40]
    heldout = [json.loads(line) for line in (ROOT / "data/tickets/heldout.jsonl").read_text().splitlines()][:8]
    write_rows(tmp_path / "data/inputs.jsonl", rows)
    write_rows(tmp_path / "data/heldout.jsonl", heldout)
    spec["data"] = {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl"}
    spec["teacher"] = {"provider": "vllm", "model": os.environ["DISTILL_TEST_VLLM_MODEL"], "max_tokens": 8,
                       "canary": {"requests": 0},  # the canary would load the replicas a second time
                       "vllm": {"replicas": int(os.environ.get("DISTILL_TEST_VLLM_REPLICAS", "1"))}}  # fmt: skip
    spec["execution"] = {"engine": "ray", "address": "local"}
    (tmp_path / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    sh = RepoShell(tmp_path, DISTILL_CACHE_DIR=str(tmp_path / ".cache"))
    sh("git", "init", "-q")
    sh("distill", "compile")
    sh("distill", "stage", "teacher")
    answers = [json.loads(line) for line in (tmp_path / "build/teacher/answers.jsonl").read_text().splitlines()]
    labelled = [a for a in answers if a.get("label") in spec["task"]["labels"]]
    assert len(labelled) >= 30 and all(a.get("label_probs") for a in labelled)  # soft labels from the replicas
