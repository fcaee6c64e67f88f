"""`execution.engine: ray` on a Ray cluster the test starts itself (a head and one worker node,
both on this machine, one CPU each): the same teacher answers, kept and rejected rows and
dataset as the local engine, byte for byte; the near-duplicate and contamination checks give the
local engine's answers on planted duplicates; a teacher stage killed with -9 under Ray repays
at most the calls in flight; a budget holds across the workers; and without Ray the spec is
refused (exit 2) naming the extra to install."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, RepoShell, write_rows

from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key
from distillbuild.llm.ray_calls import CHUNK
from distillbuild.measurements import read_report

pytest.importorskip("ray")

N_INPUTS, N_HELDOUT = 160, 48
KEY = "sk-ray-" + "r" * 24


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """`ray start --head` and one more node joining it, as on two machines; stopped afterwards."""
    ray = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # Ray's token authentication, as a cluster should run: the head writes ~/.ray/auth_token, the
    # other node and the drivers read it.
    # RAY_TEST_KEY: the teacher's key, exported on every node as on a real cluster (tasks never carry it).
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_TEST_KEY": KEY}
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run([ray, "start", "--head", "--port", str(port), "--include-dashboard=false", *common],
                   check=True, capture_output=True, env=env, timeout=180)  # fmt: skip
    try:
        subprocess.run([ray, "start", "--address", address, *common], check=True, capture_output=True, env=env,
                       timeout=180)  # fmt: skip
        yield {"RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"}
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=env, timeout=120)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _quickstart(root: Path, engine: str) -> RepoShell:
    inputs = _rows(ROOT / "data/tickets/inputs.jsonl")[:N_INPUTS]
    heldout = _rows(ROOT / "data/tickets/heldout.jsonl")[:N_HELDOUT]
    wanted = {r["text"] for r in inputs + heldout}
    write_rows(root / "data/inputs.jsonl", inputs)
    write_rows(root / "data/heldout.jsonl", heldout)
    write_rows(
        root / "data/key.jsonl", [r for r in _rows(ROOT / "data/tickets/teacher_key.jsonl") if r["text"] in wanted]
    )
    spec = yaml.safe_load((ROOT / "distill.yaml").read_text())
    spec["data"] = {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl"}
    spec["teacher"]["simulated"].update(answers="data/key.jsonl", latency_ms=0)
    spec["filters"]["min_rows_per_label"] = 3
    if engine == "ray":
        spec["execution"] = {"engine": "ray", "address": "auto", "teacher": {"workers": 2}, "filter": {"workers": 2}}
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    sh = RepoShell(root, DISTILL_CACHE_DIR=str(root / ".cache"))
    sh("git", "init", "-q")
    sh("distill", "compile")
    return sh


def test_a_ray_build_makes_the_local_build_byte_for_byte(cluster, tmp_path):
    built = {}
    for engine in ("local", "ray"):
        root = tmp_path / engine
        root.mkdir()
        sh = _quickstart(root, engine)
        sh.env.update(cluster)
        for stage in ("teacher", "filter", "dataset"):
            done = sh("distill", "stage", stage)
            if engine == "ray" and stage == "teacher":
                assert "Ray task(s) at once" in done.stderr + done.stdout
        built[engine] = {
            name: (root / name).read_bytes()
            for name in ("build/teacher/answers.jsonl", "build/teacher/heldout_answers.jsonl",
                         "build/filter/kept.jsonl", "build/filter/rejected.jsonl", "build/dataset/train.jsonl",
                         "build/dataset/val.jsonl")
        }  # fmt: skip
    for name, local in built["local"].items():
        assert built["ray"][name] == local, name
    # Same spec but for execution: the same DVC params, so a Ray build and a local one share outputs.
    stages = [yaml.safe_load((tmp_path / e / "dvc.yaml").read_text())["stages"] for e in ("local", "ray")]
    assert stages[0] == stages[1]


PLANTED = """
import json, sys
import ray
from distillbuild.curate import neardup, neardup_ray
from distillbuild.ray_cluster import ray_cluster

texts, heldout = json.load(sys.stdin)
with ray_cluster("auto"):
    cpus = ray.cluster_resources()["CPU"]
    reps = neardup_ray.near_duplicate_representatives(texts, 0.7, workers=2)
    hits = neardup_ray.contaminated_by(texts, heldout, 0.7, workers=2)
print(json.dumps({"cpus": cpus, "reps": reps, "hits": hits}))
"""


def test_the_checks_on_ray_answer_as_the_local_ones_on_planted_duplicates(cluster):
    from distillbuild.curate import neardup

    texts = [r["text"] for r in _rows(ROOT / "data/tickets/inputs.jsonl")]
    heldout = [r["text"] for r in _rows(ROOT / "data/tickets/heldout.jsonl")]
    planted = texts + [t + " Thanks a lot." for t in texts[:300]] + [t.upper() for t in texts[300:400]]
    planted += [h.replace(".", "!") for h in heldout[:100]]
    done = subprocess.run([sys.executable, "-c", PLANTED], input=json.dumps([planted, heldout]), text=True,
                          capture_output=True, env={**os.environ, **cluster}, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    on_ray = json.loads(done.stdout.strip().splitlines()[-1])
    assert on_ray["cpus"] == 2  # the head and the other node
    reps = neardup.near_duplicate_representatives(planted, 0.7)
    assert on_ray["reps"] == reps
    assert on_ray["hits"] == neardup.contaminated_by(planted, heldout, 0.7)
    assert all(reps[i] != i for i in range(1200, 1300))  # the upper-cased copies: exact duplicates
    assert sum(reps[i] != i for i in range(900, 1200)) >= 300 * 0.8  # a sentence more: most still near
    assert sum(h is not None for h in on_ray["hits"][1300:]) >= 95


def _calls_project(root: Path, base_url: str, n: int, **teacher) -> RepoShell:
    labels = ["billing", "refund", "login", "bug"]
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()
    texts = [
        f"request {i}: " + " ".join(words[(i * k) % len(words)] for k in range(1, 9)) + f" #{i * 7919}"
        for i in range(n)
    ]
    write_rows(root / "data/inputs.jsonl", [{"id": f"r{i}", "text": t} for i, t in enumerate(texts)])
    write_rows(root / "data/heldout.jsonl", [{"id": "h0", "text": "a held-out ticket", "label": "bug"}])
    spec = {
        "version": 1,
        "name": "calls",
        "task": {"type": "classification", "labels": labels, "instruction": "Classify the ticket."},
        "data": {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl"},
        "teacher": {"provider": "openai", "model": "sim", "base_url": base_url, "api_key_env": "RAY_TEST_KEY",
                    "max_tokens": 4, "top_logprobs": 2, "max_retries": 0, **teacher},
        "filters": {"dedup": {"exact": True}, "decontaminate": False},
        "student": {"kind": "encoder-classifier", "base_model": "sentence-transformers/all-MiniLM-L6-v2",
                    "trainer": "local"},
        "gates": {"accuracy": {"min": 0.1}},
        "execution": {"engine": "ray", "address": "auto", "teacher": {"workers": 2}},
    }  # fmt: skip
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    # The driver's key differs from the nodes': were a task to carry the driver's, the endpoint would answer 401.
    sh = RepoShell(root, DISTILL_CACHE_DIR=str(root / ".cache"), RAY_TEST_KEY="sk-the-driver-holds-another")
    sh("git", "init", "-q")
    sh("distill", "compile")
    return sh


def test_kill_9_under_ray_repays_at_most_what_was_in_flight(cluster, tmp_path):
    n = 2000
    teacher = SimulatedTeacher(
        load_answer_key_empty(tmp_path), ["billing", "refund", "login", "bug"], accuracy=0.9, seed=5
    )
    with SimulatedTeacherServer(teacher, latency_ms=20, api_key=KEY) as server:  # 401 without the key
        sh = _calls_project(tmp_path, server.base_url, n, concurrency=4)
        sh.env.update(cluster)
        stage = subprocess.Popen(
            ["distill", "stage", "teacher"], cwd=tmp_path, env=sh.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while server.requests_served < n // 3 and time.monotonic() < deadline and stage.poll() is None:
            time.sleep(0.05)
        os.killpg(stage.pid, signal.SIGKILL)
        stage.wait()
        before = server.requests_served
        assert 0 < before < n
        sh("distill", "stage", "teacher")
        total = server.requests_served
    unique = n + 1  # every input and the held-out row, each asked once when nothing is lost
    in_flight = 2 * CHUNK  # two tasks' chunks
    assert unique <= total <= unique + in_flight, (before, total)
    report = read_report(tmp_path / "build/teacher/report.json")  # with the run's measured counts
    assert report["calls"]["from_cache"] >= before - in_flight


def load_answer_key_empty(tmp_path: Path):
    path = tmp_path / "empty-key.jsonl"
    path.write_text("")
    return load_answer_key(path)


def test_a_budget_holds_across_the_ray_workers(cluster, tmp_path):
    n, budget = 1500, 0.5
    price = {"input_per_mtok": 100.0, "output_per_mtok": 100.0}  # under a cent a call: the budget buys tens
    teacher = SimulatedTeacher(
        load_answer_key_empty(tmp_path), ["billing", "refund", "login", "bug"], accuracy=0.9, seed=5
    )
    with SimulatedTeacherServer(teacher, latency_ms=5, api_key=KEY) as server:
        sh = _calls_project(tmp_path, server.base_url, n, concurrency=8, price=price, budget_usd=budget)
        sh.env.update(cluster)
        done = sh("distill", "stage", "teacher", check=False)
        served = server.requests_served
    assert done.returncode == 3 and "budget reached" in done.stderr, done.stderr[-2000:]
    spent = float(done.stderr.split("budget reached: $")[1].split()[0])
    assert budget / 2 < spent <= budget and 0 < served < n  # most of it spent, never more
    print(f"\nbudget ${budget} across 2 Ray workers: ${spent:.4f} spent, {served} calls served")


def test_without_ray_engine_ray_is_refused_naming_the_extra(tmp_path):
    (tmp_path / "data").mkdir()
    write_rows(tmp_path / "data/inputs.jsonl", [{"id": "a", "text": "x"}])
    write_rows(tmp_path / "data/heldout.jsonl", [{"id": "b", "text": "y", "label": "bug"}])
    spec = yaml.safe_load((ROOT / "distill.yaml").read_text())
    spec["data"] = {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl"}
    spec["teacher"] = {"provider": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
    spec["execution"] = {"engine": "ray"}
    (tmp_path / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    hide = "import sys; sys.modules['ray'] = None; from distillbuild.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", hide, "validate", str(tmp_path / "distill.yaml")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "execution.engine" in done.stderr and "pip install 'distillbuild[ray]'" in done.stderr
    assert re_line(done.stderr)


def re_line(text: str) -> bool:
    import re

    return re.search(r"distill\.yaml:\d+: execution\.engine", text) is not None


VLLM_RUN = """
import json, math, sys
from pathlib import Path
import ray
from distillbuild.llm.cache import TeacherCache, request_key
from distillbuild.llm.engine import answer_all
from distillbuild.llm.results import RunStats
from distillbuild.llm.settings import TeacherSettings
from distillbuild.llm.vllm_ray import VllmProcessor, build_vllm_processor
from distillbuild.protocol.choice import body_fields
from distillbuild.ray_cluster import ray_cluster
from distillbuild.spec.model import VllmEngine

LABELS = ["billing", "refund", "login", "bug"]

def engine_answer(row):
    # The engine stage's part, without a GPU: an answer and its logprobs in Ray's own vLLMOutputData.
    from ray.llm._internal.batch.stages.vllm_engine_stage import vLLMOutputData
    text = row["messages"][-1]["content"]
    if "UNREADABLE" in text:  # as vLLM fails a prompt longer than max_model_len
        return {**row, **vLLMOutputData(prompt=text, num_input_tokens=0).model_dump(),
                "__inference_error__": "ValueError: prompt too long"}
    choices = list(row["sampling_params"]["structured_outputs"]["choice"])
    label = next((c for c in choices if c in text), choices[0])
    probs = {c: (0.7 if c == label else 0.1) for c in choices}
    ids = {c: 100 + i for i, c in enumerate(choices)}
    ranked = sorted(choices, key=lambda c: -probs[c])
    position = {ids[c]: {"logprob": math.log(probs[c]), "rank": r + 1, "decoded_token": c}
                for r, c in enumerate(ranked)}
    out = vLLMOutputData(prompt=text, num_input_tokens=len(text) // 4, generated_tokens=[ids[label]],
                         generated_text=label, num_generated_tokens=1, logprobs=[position]).model_dump()
    return {**row, **out, "__inference_error__": ""}

texts = json.load(sys.stdin)
cache_dir = Path(sys.argv[1])
engine = VllmEngine(replicas=2, tensor_parallel_size=1, batch_size=16, gpu_memory_utilization=0.9)
settings = TeacherSettings(endpoint_id="vllm:m", base_url=None, model="m", temperature=0.0, max_tokens=4,
                           top_logprobs=4, seed=None, concurrency=1, timeout_s=60, max_retries=0,
                           constraint=body_fields("guided_choice", LABELS), vllm=engine)
with ray_cluster("auto"):
    stages = build_vllm_processor(engine, settings).list_stage_names()
    cache, stats = TeacherCache(cache_dir), RunStats()
    bodies = [settings.body([{"role": "user", "content": t}]) for t in texts]
    keys = [request_key(settings.endpoint_id, b) for b in bodies]
    items = list(zip(keys, bodies))
    standin = VllmProcessor(engine, build=lambda e, s: (lambda ds: ds.map(engine_answer)))
    results = standin.run(items, settings, cache, stats, lambda line: None)
    # The answered requests again through answer_all: all in the cache, nothing is asked.
    answered = [[{"role": "user", "content": t}] for k, t in zip(keys, texts) if results[k].response]
    again, again_stats = answer_all(answered, settings, cache, log=lambda line: None)
print(json.dumps({
    "stages": stages,
    "labels": [results[k].response["choices"][0]["message"]["content"] if results[k].response else None
               for k in keys],
    "top": results[keys[0]].response["choices"][0]["logprobs"]["content"][0]["top_logprobs"],
    "errors": stats.errors, "billed": stats.billed_calls, "cached": sum(1 for k in results if cache.get_many([k])),
    "again_hits": again_stats.cache_hits,
}))
"""


def test_vllm_replicas_answers_stream_into_the_cache_through_ray_data(cluster, tmp_path):
    """teacher.provider: vllm's processor on the cluster, through Ray Data: Ray's own vLLM processor
    is built from the spec's settings (not run: no GPU here), and the driver's loop runs with the
    engine stage answered in Ray Data tasks from vLLM's output rows (Ray's own vLLMOutputData)."""
    texts = [f"ticket {i}: " + ["billing", "refund", "login", "bug"][i % 4] + " question" for i in range(200)]
    texts[7] = "UNREADABLE " * 3
    done = subprocess.run([sys.executable, "-c", VLLM_RUN, str(tmp_path / "cache")], input=json.dumps(texts),
                          capture_output=True, text=True, timeout=300, env={**os.environ, **cluster})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["stages"] == ["ChatTemplateStage", "TokenizeStage", "vLLMEngineStage", "DetokenizeStage"]
    labels = out["labels"]
    assert len(labels) == 200 and labels[7] is None and out["errors"] == {"engine_error": 1}
    assert all(labels[i] == ["billing", "refund", "login", "bug"][i % 4] for i in range(200) if i != 7)
    assert [t["token"] for t in out["top"]][0] == "billing" and len(out["top"]) == 4
    assert out["billed"] == 199 and out["cached"] == 199 and out["again_hits"] == 199
