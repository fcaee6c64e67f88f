"""End to end: real `dvc repro` in a temporary git repository, on a reduced quickstart.

The teacher is the simulated server over real HTTP, the student the packaged MiniLM trained
on CPU. Checks the gate's decision, that a rerun does no work, that raising a gate threshold
re-runs `gate` alone and fails it, and that re-running the teacher pays for nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, RepoShell, build_reduced_pipeline, write_rows

from distillbuild.measurements import read_report
from distillbuild.spec.loader import load_yaml_file

N_INPUTS, N_HELDOUT = 160, 48


def _take(path: Path, n: int) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            rows.append(json.loads(line))
            if len(rows) == n:
                break
    return rows


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    sh = RepoShell(root, OMP_NUM_THREADS="2")  # torch's threads, whatever the machine: a reproduce varies them
    spec = load_yaml_file(ROOT / "distill.yaml").data
    spec["student"].update(epochs=2, batch_size=16)
    spec["evaluation"] = {"latency_samples": 20, "threads": 1}
    spec["gates"] = {"accuracy": {"min": 0.2}, "latency_p95_ms": {"max": 10000}}
    spec["filters"]["min_rows_per_label"] = 3  # 160 rows over 12 labels
    with (ROOT / "data/tickets/teacher_key.jsonl").open() as key:
        first = build_reduced_pipeline(
            sh,
            spec,
            _take(ROOT / "data/tickets/inputs.jsonl", N_INPUTS),
            _take(ROOT / "data/tickets/heldout.jsonl", N_HELDOUT),
            map(json.loads, key),
        )
    return root, sh, first, spec


def test_repro_builds_and_the_gate_passes(repo):
    root, sh, first, _ = repo
    for stage in ("teacher", "filter", "dataset", "configure", "train", "evaluate", "gate", "export"):
        assert f"Running stage '{stage}'" in first.stdout
    exported = read_report(root / "build/export/report.json")  # the quickstart exports ONNX
    assert exported["agreement"] == 1.0 and exported["accuracy"] == exported["student_accuracy"]
    decision = json.loads((root / "build/gate/decision.json").read_text())
    assert decision["verdict"] == "pass"
    metrics = read_report(root / "build/evaluate/metrics.json")
    assert metrics["heldout_rows"] == N_HELDOUT
    assert 0.2 <= metrics["accuracy"] <= 1 and 0.5 < metrics["teacher_accuracy"] <= 1
    assert metrics["retention"] == pytest.approx(metrics["accuracy"] / metrics["teacher_accuracy"], abs=1e-5)
    assert metrics["accuracy_ci_low"] <= metrics["accuracy"] <= metrics["accuracy_ci_high"]
    assert metrics["teacher_cost_per_1k_usd"] > 0 and metrics["student_cost_per_1k_usd"] > 0
    predictions = json.loads((root / "build/evaluate/predictions.json").read_text())
    labels = json.loads((root / "build/model/student.json").read_text())["labels"]
    # Each answer's probability: at least a uniform guess's, the confidence a router would read.
    assert all(1 / len(labels) <= p["student_confidence"] <= 1 for p in predictions)
    report = read_report(root / "build/teacher/report.json")
    checked = report["input_checks"]  # the inputs the input checks drop are never asked
    assert checked["inputs"] == N_INPUTS and checked["asked"] + checked["not_asked"] == N_INPUTS
    assert report["calls"]["requested"] == checked["asked"] + N_HELDOUT
    assert (
        report["calls"]["billed"] + report["calls"]["from_cache"] + report["calls"]["deduplicated"]
        >= checked["asked"] + N_HELDOUT
    )
    assert report["simulated"] is True
    summary = sh("distill", "summary").stdout
    assert "SIMULATED" in summary and "retention" in summary and "PASS" in summary


def test_second_repro_does_no_work(repo):
    _, sh, _, _ = repo
    again = sh("dvc", "repro")
    assert "Running stage" not in again.stdout
    assert sh("dvc", "status", "-q", check=False).returncode == 0


def test_a_forced_rebuild_rewrites_no_hashed_byte(repo):
    """Timings, machine facts and call counts live apart from what DVC hashes
    (distillbuild/measurements.py): `dvc repro --force`, twice, leaves dvc.lock and every
    committed file as they were."""
    root, sh, _, _ = repo
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "built")
    runs = []
    for _ in range(2):
        forced = sh("dvc", "repro", "--force")
        assert "Running stage 'train'" in forced.stdout and "Running stage 'evaluate'" in forced.stdout
        runs.append(
            ((root / "dvc.lock").read_text(), sh("git", "diff").stdout, sh("git", "status", "--porcelain").stdout)
        )
    assert runs[0] == runs[1]
    # Against the commit, only the revision the gate records has moved (it ran at the new HEAD).
    changed = [l for l in runs[0][1].splitlines() if l[:1] in "+-" and l[:3] not in ("+++", "---")]
    assert not [l for l in changed if not any(w in l for w in ("git_revision", "Git revision", "md5:", "size:"))]
    assert "??" not in runs[0][2]  # nothing untracked: the measured figures live under .distill/
    assert "latency p50" in sh("distill", "summary").stdout  # and are still there to read


def test_metrics_and_plots_commands_work(repo):
    _, sh, _, _ = repo
    shown = json.loads(sh("dvc", "metrics", "show", "--json").stdout)
    flat = json.dumps(shown)
    assert "accuracy" in flat and "retention" in flat
    plots = sh("dvc", "plots", "show", "--json").stdout
    assert "predictions.json" in plots and "history.json" in plots


def test_rerunning_the_teacher_pays_nothing(repo):
    root, sh, _, _ = repo
    sh("dvc", "repro", "-f", "-s", "teacher")
    report = read_report(root / "build/teacher/report.json")
    assert report["calls"]["billed"] == 0
    assert report["calls"]["from_cache"] == N_INPUTS + N_HELDOUT
    assert report["cost_usd"] == 0
    # Answers from the cache are byte-identical to the paid ones: nothing downstream rebuilds.
    status = sh("dvc", "status").stdout
    assert "filter" not in status and "evaluate" not in status


def test_a_passing_gate_records_lineage_and_writes_a_model_card(repo):
    root, _, _, _ = repo
    decision = json.loads((root / "build/gate/decision.json").read_text())
    lineage = decision["lineage"]
    assert len(lineage["spec_sha256"]) == 64 and len(lineage["model_sha256"]) == 64
    assert lineage["data_sha256"]["inputs"] and lineage["teacher"]["answers_sha256"]
    assert lineage["teacher"]["simulated"] is True
    assert any(g["gate"] == "heldout_rows" and g["pass"] for g in decision["gates"])  # the implicit minimum
    card = (root / "build/gate/model_card.md").read_text()
    assert card.startswith("---\n") and "base_model: sentence-transformers/all-MiniLM-L6-v2" in card
    assert "simulated stand-in" in card and lineage["model_sha256"] in card
    assert "- Terms: The simulated stand-in has no terms." in card  # teacher.terms, beside the numbers
    dvc_yaml = yaml.safe_load((root / "dvc.yaml").read_text())
    assert dvc_yaml["artifacts"]["ticket-triage"]["path"] == "build/model"
    assert dvc_yaml["artifacts"]["ticket-triage"]["type"] == "model"


def test_promote_tags_a_committed_passing_build(repo):
    root, sh, _, _ = repo
    refused = sh("distill", "promote", check=False)
    assert refused.returncode == 1 and "commit the build record" in refused.stderr
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "build v1")
    first = sh("distill", "promote")
    assert "ticket-triage@v1.0.0" in first.stdout
    assert sh("git", "tag", "--list", "ticket-triage@*").stdout.split() == ["ticket-triage@v1.0.0"]
    message = sh("git", "tag", "-n99", "ticket-triage@v1.0.0").stdout
    decision = json.loads((root / "build/gate/decision.json").read_text())
    assert decision["lineage"]["model_sha256"] in message
    assert "ticket-triage@v1.1.0" in sh("distill", "promote").stdout
    assert "ticket-triage@v1.1.1" in sh("distill", "promote", "--bump", "patch").stdout
    assert sh("distill", "promote", "--version", "1.1.1", check=False).returncode == 1  # exists already


def test_reproduce_the_promoted_tag_matches_its_record(repo):
    root, sh, _, _ = repo
    done = sh("distill", "reproduce", "ticket-triage@v1.0.0")
    assert "IDENTICAL to the record" in done.stdout, done.stdout + done.stderr
    assert "0 billed" in done.stdout  # every teacher answer came from the cache
    assert sh("git", "worktree", "list").stdout.count("\n") == 1  # the temporary worktree is gone


def test_reproduce_on_one_thread_is_equivalent_and_names_train(repo):
    """Training on one thread instead of two sums the same floats in another order: the model's
    bytes differ from the same inputs, its answers and gated metrics do not. EQUIVALENT, exit 4."""
    root, _, _, _ = repo
    one_thread = RepoShell(root, OMP_NUM_THREADS="1")
    done = one_thread("distill", "reproduce", "ticket-triage@v1.0.0", "--json", check=False)
    report = json.loads(done.stdout)
    assert (done.returncode, report["verdict"]) == (4, "EQUIVALENT"), report
    first = report["first_difference"]
    assert first["stage"] == "train" and first["inputs"] == [] and "build/model" in first["outputs"]
    assert report["agreement"]["share"] >= 0.995 and all(g["holds"] for g in report["gated_metrics"])
    markdown = one_thread("distill", "reproduce", "ticket-triage@v1.0.0", check=False)
    assert "EQUIVALENT to the record" in markdown.stdout and "stage `train`: the same inputs" in markdown.stdout


def test_reproduce_of_a_changed_input_row_is_different(repo):
    """An input row changed and committed without a rebuild: the record no longer describes that
    revision. DIFFERENT, exit 1, naming the teacher and the file."""
    root, sh, _, _ = repo
    inputs = root / "data/inputs.jsonl"
    rows = inputs.read_text().splitlines()
    inputs.write_text("\n".join([json.dumps({**json.loads(rows[0]), "id": "changed"}), *rows[1:]]) + "\n")
    sh("git", "commit", "-qam", "an input row changed, the build not rerun")
    try:
        done = sh("distill", "reproduce", "HEAD", "--json", check=False)
        report = json.loads(done.stdout)
        assert (done.returncode, report["verdict"]) == (1, "DIFFERENT"), report
        assert report["first_difference"]["stage"] == "teacher"
        assert "data/inputs.jsonl" in report["first_difference"]["inputs"]
    finally:
        sh("git", "reset", "-q", "--hard", "HEAD~1")


def test_diff_of_a_committed_filter_change(repo):
    root, sh, _, spec = repo
    changed = json.loads(json.dumps(spec))
    changed["filters"]["min_confidence"] = 0.7
    (root / "distill.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
    sh("git", "commit", "-qam", "raise min_confidence")
    report = json.loads(sh("distill", "diff", "HEAD~1", "--json").stdout)
    assert [(c["key"], c["old"], c["new"]) for c in report["changes"]] == [("filters.min_confidence", 0.6, 0.7)]
    rebuilding = [s["stage"] for s in report["stages"] if s["rebuilds"]]
    assert rebuilding == ["filter", "dataset", "train", "evaluate", "gate", "export"]
    assert report["teacher"]["new_calls"] == 0
    markdown = sh("distill", "diff", "HEAD~1").stdout
    assert "`filters.min_confidence` | `0.6` | `0.7`" in markdown and "0 new teacher calls" in markdown
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    sh("git", "commit", "-qam", "back to 0.6")


def _edit(root: Path, spec: dict, change) -> dict:
    edited = json.loads(json.dumps(spec))
    change(edited)
    (root / "distill.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    return edited


def _stages_to_rerun(sh) -> list[str]:
    sh("distill", "compile")  # a key the file did not set before is a new param
    return sorted(json.loads(sh("dvc", "status", "--json").stdout))


def test_an_edit_that_no_stage_reads_leaves_the_build_current(repo):
    """The gate's record holds the spec as the stages see it, so `distill promote` agrees with
    `dvc status`: an unread key changes neither; a key only the teacher reads reruns the teacher
    (its answers the same) and the gate, which records the new value."""
    root, sh, _, spec = repo
    _edit(root, spec, lambda s: s.update(drift={"max_ood_share": 0.2}))  # read by `distill drift` alone
    assert _stages_to_rerun(sh) == []
    sh("git", "commit", "-qam", "a drift threshold")
    assert "ticket-triage@v1.2.0" in sh("distill", "promote").stdout
    _edit(root, spec, lambda s: s["teacher"].update(concurrency=4))
    assert _stages_to_rerun(sh) == ["gate", "teacher"]
    rebuilt = sh("dvc", "repro")
    assert "Running stage 'gate'" in rebuilt.stdout and "Running stage 'filter'" not in rebuilt.stdout
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "teacher concurrency 4")
    assert "ticket-triage@v1.3.0" in sh("distill", "promote").stdout
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))  # as the other tests expect it
    sh("dvc", "repro")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "back to the first spec")


def test_a_gates_key_or_min_heldout_rows_reruns_the_gate_alone(repo):
    root, sh, _, spec = repo
    current = yaml.safe_load((root / "distill.yaml").read_text())
    _edit(root, current, lambda s: s.setdefault("evaluation", {}).update(min_heldout_rows=40))
    assert _stages_to_rerun(sh) == ["gate"]
    _edit(root, current, lambda s: s["gates"]["latency_p95_ms"].update(max=20000))
    assert _stages_to_rerun(sh) == ["gate"]
    (root / "distill.yaml").write_text(yaml.safe_dump(current, sort_keys=False))
    assert _stages_to_rerun(sh) == []


def test_raising_a_gate_reruns_gate_alone_and_fails(repo):
    root, sh, _, spec = repo
    spec = json.loads(json.dumps(spec))
    spec["gates"]["accuracy"]["min"] = 0.999
    (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert sh("distill", "compile", "--check", check=False).returncode == 0  # dvc.yaml unchanged
    status = sh("dvc", "status").stdout
    assert "gate" in status and "teacher" not in status and "train" not in status
    failed = sh("dvc", "repro", check=False)
    assert failed.returncode != 0
    assert "Running stage 'gate'" in failed.stdout
    for stage in ("teacher", "filter", "dataset", "configure", "train", "evaluate"):
        assert f"Running stage '{stage}'" not in failed.stdout
    assert "FAIL (below 0.999)" in failed.stderr  # stages log to stderr
    decision = json.loads((root / "build/gate/decision.json").read_text())
    assert decision["verdict"] == "fail"
    assert [g["gate"] for g in decision["gates"] if not g["pass"]] == ["accuracy"]
    assert not (root / "build/gate/model_card.md").exists()  # no card for a model that failed
    refused = sh("distill", "promote", check=False)
    assert refused.returncode == 1 and "gate failed (accuracy)" in refused.stderr


def test_a_real_provider_key_never_reaches_dvc_lock_cache_or_logs(tmp_path):
    """provider: openai through `dvc repro`: the key from the environment lands nowhere."""
    from distillbuild.endpoints.standin.server import SimulatedTeacherServer
    from distillbuild.endpoints.standin.teacher import SimulatedTeacher, load_answer_key

    secret = "sk-proj-" + "S3cr3t" * 8
    root = tmp_path / "repo"
    root.mkdir()
    inputs = _take(ROOT / "data/tickets/inputs.jsonl", 30)
    heldout = _take(ROOT / "data/tickets/heldout.jsonl", 10)
    write_rows(root / "data/inputs.jsonl", inputs)
    write_rows(root / "data/heldout.jsonl", heldout)
    spec = load_yaml_file(ROOT / "distill.yaml").data
    key = load_answer_key(ROOT / "data/tickets/teacher_key.jsonl")
    sh = RepoShell(root, timeout=300, PROVIDER_KEY=secret)
    with SimulatedTeacherServer(SimulatedTeacher(key, spec["task"]["labels"], 0.9, 1), api_key=secret) as server:
        spec["data"] = {"inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl"}
        spec["teacher"] = {
            "provider": "openai",
            "model": "gpt-4o",
            "base_url": server.base_url,
            "api_key_env": "PROVIDER_KEY",
            "concurrency": 4,
        }
        (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        logs = ""
        for cmd in (
            ["git", "init", "-q"],
            ["dvc", "init", "-q"],
            ["distill", "compile"],
            ["dvc", "repro", "teacher", "filter"],
        ):
            done = sh(*cmd, check=False)
            logs += done.stdout + done.stderr
            assert done.returncode == 0, logs
        assert server.requests_served == 40
    assert (root / "dvc.lock").exists() and (root / "build/teacher/answers.jsonl").exists()
    assert any((root / ".dvc/cache").rglob("*")) and any((root / ".distill/cache").rglob("*"))
    assert secret not in logs
    leaked = [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == []
