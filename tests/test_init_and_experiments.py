"""A newcomer's day: `distill init` in an empty directory, `dvc repro` builds a model with the
simulated teacher; an experiment with `dvc exp run -S` reruns only what the change touches and
leaves the spec's formatting alone; a build pushed to a DVC remote and pulled into a fresh clone
is up to date and predicts what the pushed one did."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT, RepoShell

from distillbuild.cli import main
from distillbuild.measurements import read_report

GIT_ID = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def _changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b), "the round trip added or dropped lines"
    return [(x, y) for x, y in zip(a, b) if x != y]


def _round_trip(path: Path, override: str) -> list[tuple[str, str]]:
    """What `dvc exp run -S` does to the file (DVC's own apply_overrides), line by line."""
    from dvc.utils.hydra import apply_overrides

    before = path.read_text()
    apply_overrides(str(path), [override])
    return _changed_lines(before, path.read_text())


def test_the_quickstart_spec_survives_dvcs_parameter_round_trip(tmp_path):
    copy = tmp_path / "distill.yaml"
    shutil.copy(ROOT / "distill.yaml", copy)
    assert _round_trip(copy, "gates.accuracy.min=0.8") == [("  accuracy: {min: 0.85}", "  accuracy: {min: 0.8}")]
    assert _round_trip(copy, "student.epochs=3") == [("  epochs: 6", "  epochs: 3")]


def test_init_refuses_to_write_over_a_project_and_takes_its_choices_from_flags(tmp_path):
    runner = CliRunner()
    target = tmp_path / "triage"
    made = runner.invoke(
        main,
        [
            "init",
            str(target),
            "--no-input",
            "--labels",
            "spam,legit,phishing",
            "--teacher",
            "openai",
            "--model",
            "gpt-4o-mini",
            "--name",
            "mail-triage",
        ],
    )
    assert made.exit_code == 0, made.output
    spec = yaml.safe_load((target / "distill.yaml").read_text())
    assert spec["task"]["labels"] == ["spam", "legit", "phishing"] and spec["name"] == "mail-triage"
    assert spec["teacher"]["provider"] == "openai" and spec["teacher"]["api_key_env"] == "OPENAI_API_KEY"
    assert not (target / "data/teacher_key.jsonl").exists()  # a real teacher needs no answer key
    heldout = [json.loads(line) for line in (target / "data/heldout.jsonl").open()]
    assert {r["label"] for r in heldout} == {"spam", "legit", "phishing"}
    assert (target / ".dvc").is_dir() and (target / "dvc.yaml").is_file() and (target / ".git").is_dir()
    assert runner.invoke(main, ["validate", str(target / "distill.yaml")]).exit_code == 0
    assert _round_trip(target / "distill.yaml", "gates.accuracy.min=0.8") == [("    min: 0.7", "    min: 0.8")]

    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file() and ".git" not in p.parts}
    again = runner.invoke(main, ["init", str(target), "--no-input"])
    assert again.exit_code == 2 and "writes over nothing" in again.output
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file() and ".git" not in p.parts} == before
    bad = runner.invoke(main, ["init", str(tmp_path / "x"), "--no-input", "--teacher", "llamacpp"])
    assert bad.exit_code == 2 and "--gguf" in bad.output


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """`distill init` in an empty directory, then the one command, as a newcomer runs them."""
    root = tmp_path_factory.mktemp("newcomer") / "ticket-model"
    sh = RepoShell(root.parent, **GIT_ID)
    sh("distill", "init", str(root), "--no-input")
    sh = RepoShell(root, **GIT_ID)
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "distill init")
    sh("dvc", "repro")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "first build")
    return root, sh


def test_init_then_dvc_repro_builds_a_model_that_passes_its_gates(built):
    root, sh = built
    decision = json.loads((root / "build/gate/decision.json").read_text())
    assert decision["verdict"] == "pass", decision["gates"]
    assert (root / "build/model").is_dir()
    assert read_report(root / "build/teacher/report.json")["simulated"] is True
    assert "ticket-model" in sh("distill", "summary").stdout
    assert sh("dvc", "status").stdout.strip() == "Data and pipelines are up to date."


def test_an_experiment_reruns_only_the_gate_and_keeps_the_spec_formatting(built):
    root, sh = built
    committed = (root / "distill.yaml").read_text()
    run = sh("dvc", "exp", "run", "-S", "distill.yaml:gates.accuracy.min=0.75", "-n", "looser-gate")
    ran = [line for line in run.stdout.splitlines() if line.startswith("Running stage")]
    assert ran == ["Running stage 'gate':"], run.stdout
    shown = json.loads(sh("dvc", "exp", "show", "--json").stdout)
    names = json.dumps(shown)
    assert "looser-gate" in names and "0.75" in names
    sh("dvc", "exp", "apply", "looser-gate")
    assert _changed_lines(committed, (root / "distill.yaml").read_text()) == [("    min: 0.7", "    min: 0.75")]
    sh("git", "checkout", "--", ".")
    sh("dvc", "checkout", "-q")


def test_a_build_pushed_to_a_remote_is_up_to_date_in_a_fresh_clone(built, tmp_path):
    from distillbuild.train.encoder import EncoderClassifier

    root, sh = built
    remote = tmp_path / "remote"
    sh("dvc", "remote", "add", "-d", "shared", str(remote))
    sh("git", "commit", "-qam", "a shared DVC remote")
    sh("dvc", "push", "--run-cache")
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(root), str(clone))
    other = RepoShell(clone, **GIT_ID)
    other("dvc", "pull", "--run-cache")
    assert other("dvc", "status").stdout.strip() == "Data and pipelines are up to date."
    heldout = [json.loads(line)["text"] for line in (root / "data/heldout.jsonl").open()]
    pushed = EncoderClassifier.load(root / "build/model").predict_proba(heldout)
    pulled = EncoderClassifier.load(clone / "build/model").predict_proba(heldout)
    assert (pushed == pulled).all()
    rebuilt = other("dvc", "repro")  # nothing to do: no stage runs, so no teacher is asked
    assert "Running stage" not in rebuilt.stdout
    # A rebuild from scratch in the clone: the teacher's answers come with the pull
    # (build/teacher/responses.jsonl), so not one request reaches the teacher.
    assert not (clone / ".distill").exists()
    report = json.loads(other("distill", "reproduce", "HEAD", "--json").stdout)
    assert report["teacher_calls_billed"] == 0 and report["teacher_calls_from_cache"] > 0
    assert report["identical"], [r for r in report["rows"] if not r["same"]]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PALETTE_RGB = {
    "blue": (0x2F, 0x6F, 0xDE),
    "orange": (0xE0, 0x7B, 0x24),
    "green": (0x2E, 0x9D, 0x5B),
    "red": (0xC2, 0x3B, 0x3B),
}


def _render(page: Path, out: Path) -> tuple[Path, str, list[str]]:
    """Headless Chromium: a screenshot, its console lines and the URLs of every request it made."""
    import subprocess

    shot, netlog = out / "shot.png", out / "net.json"
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={out / 'profile'}",
            "--disable-background-networking",
            "--window-size=1200,4000",
            f"--screenshot={shot}",
            "--enable-logging=stderr",
            "--v=0",
            f"--log-net-log={netlog}",
            "--net-log-capture-mode=Everything",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    # The page's own requests; the browser's background ones (clock sync, dictionaries) have no origin.
    jobs = [e.get("params") or {} for e in log.get("events", []) if e.get("type") == start]
    urls = {p["url"] for p in jobs if "url" in p and p.get("initiator") != "not an origin"}
    return shot, "\n".join(console), sorted(u for u in urls if not u.startswith(("file:", "data:")))


def _pixels_of(shot: Path, rgb: tuple[int, int, int]) -> int:
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    return sum(count for count, color in image.getcolors(maxcolors=1 << 20) if color == rgb)


def test_the_build_report_is_one_self_contained_page(built):
    root, sh = built
    out = sh("distill", "report").stdout
    page = root / "build/report.html"
    html = page.read_text()
    assert f"wrote {page}" in out
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html  # nothing to fetch or run
    for section in (
        "Teacher",
        "Filter",
        "Examples of rejected rows",
        "Training",
        "Confusion matrix",
        "Per-class F1",
        "Latency and the machine",
        "Gates",
        "Lineage",
        "Model card",
    ):
        assert section in html, section
    assert html.count("<svg") >= 6 and "PASS" in html


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_report_draws_its_charts_in_chromium_without_a_request(built, tmp_path):
    root, sh = built
    sh("distill", "report")
    shot, console, requests = _render(root / "build/report.html", tmp_path)
    assert requests == [] and "error" not in console.lower(), (requests, console)
    drawn = {name: _pixels_of(shot, rgb) for name, rgb in PALETTE_RGB.items()}
    assert all(n > 500 for n in drawn.values()), drawn  # bars, lines and the confusion grid in their colours
    # The checks can fail: a page that reaches out is caught by both.
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<img src="http://127.0.0.1:9/chart.png"><script>console.error("boom")</script>')
    _, console, requests = _render(leaky, tmp_path)
    assert requests == ["http://127.0.0.1:9/chart.png"] and "boom" in console


def test_an_extraction_project_from_init_builds_and_survives_the_round_trip(tmp_path):
    root = tmp_path / "orders"
    sh = RepoShell(tmp_path, **GIT_ID)
    sh("distill", "init", str(root), "--no-input", "--task", "extraction", "--fields", "customer_name,order_id")
    spec = yaml.safe_load((root / "distill.yaml").read_text())
    assert spec["task"]["type"] == "extraction" and spec["student"]["kind"] == "encoder-extractor"
    assert spec["task"]["output_schema"]["required"] == ["customer_name", "order_id"]
    copy = tmp_path / "copy.yaml"
    shutil.copy(root / "distill.yaml", copy)
    assert _round_trip(copy, "gates.retention.min=0.8") == [("    min: 0.85", "    min: 0.8")]
    sh = RepoShell(root, **GIT_ID)
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "distill init")
    sh("dvc", "repro")
    decision = json.loads((root / "build/gate/decision.json").read_text())
    assert decision["verdict"] == "pass", decision["gates"]


def test_init_quotes_labels_yaml_would_misread_and_writes_nothing_for_a_spec_that_fails(tmp_path):
    runner = CliRunner()
    made = runner.invoke(main, ["init", str(tmp_path / "odd"), "--no-input", "--labels", "1,yes,on-hold"])
    assert made.exit_code == 0, made.output
    assert yaml.safe_load((tmp_path / "odd/distill.yaml").read_text())["task"]["labels"] == ["1", "yes", "on-hold"]
    assert runner.invoke(main, ["validate", str(tmp_path / "odd/distill.yaml")]).exit_code == 0
    refused = runner.invoke(
        main, ["init", str(tmp_path / "gone"), "--no-input", "--teacher", "llamacpp", "--gguf", "models/missing.gguf"]
    )
    assert (
        refused.exit_code == 2
        and "nothing was written" in refused.output
        and "teacher.llamacpp.model" in refused.output
    )
    assert not (tmp_path / "gone").exists()
