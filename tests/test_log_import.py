"""Production logs as inputs: `distill import-logs` masks e-mail addresses, phone numbers and card
numbers (and the spec's own patterns) before anything is written, so none of them reaches the
teacher's requests, the teacher cache or any file of the build."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import LABELS, base_spec

from distillbuild.cli import main
from distillbuild.privacy.recognizers import luhn_ok
from distillbuild.privacy.scrubber import Scrubber
from distillbuild.spec.model import Scrub

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

EMAILS = ["jane.doe+orders@example.co.uk", "m.rossi@mail.example.it", "ops@brightnest-shop.com"]
PHONES = ["+1 (555) 010-2030", "020 7946 0958", "+447700900123", "555.010.2030"]
CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"]
KEPT = ["order BN-354162", "W1234567", "on 2026-11-30", "$1,188.00", "at 2pm", "1234 5678 9012 3456"]


@pytest.mark.parametrize(
    "text,masked",
    [
        ("card 4111 1111 1111 1111 123 (the CVV)", "card [CARD] 123 (the CVV)"),
        ("4111 1111 1111 1111 12/25", "[CARD] 12/25"),
        ("Qty 2 4111 1111 1111 1111", "Qty 2 [CARD]"),
        ("call 5551234567 or +1 5551234567", "call [PHONE] or [PHONE]"),
        ("07700 900123, +44 7700 900123, 0171 1234567", "[PHONE], [PHONE], [PHONE]"),
        ("müller@firma.de and josé.garcía@empresa.es", "[EMAIL] and [EMAIL]"),
        (
            "sales 2019-2023 grew; meet 10.30-11.45; on 2024-01-15 12 items; v4.2.1.0",
            "sales 2019-2023 grew; meet 10.30-11.45; on 2024-01-15 12 items; v4.2.1.0",
        ),
        ("my IP is 10.20.30.40", "my IP is [IP]"),
    ],
)
def test_cards_beside_other_numbers_every_phone_form_and_numbers_that_are_not_phones(text, masked):
    assert Scrubber()(text) == masked


def test_the_specs_own_patterns_run_before_the_built_in_rules():
    scrub = Scrubber.from_spec(Scrub(patterns=({"name": "ticket_ref", "regex": r"TKT-\d{4}-\d{4}"},)))
    assert scrub("see TKT-1234-5678") == "see [TICKET_REF]"  # not TKT-[PHONE]


def test_the_rules_mask_pii_and_leave_order_numbers_dates_and_prices():
    assert all(luhn_ok(c.replace(" ", "").replace("-", "")) for c in CARDS)
    assert not luhn_ok("1234567890123456")  # many digits, not a card: kept
    scrub = Scrubber.from_spec(Scrub(patterns=({"name": "ticket_ref", "regex": r"TCK-\d{5}"},)))
    text = (
        f"Hi, I'm at {EMAILS[0]} or {PHONES[0]}, card {CARDS[0]} was charged for {KEPT[0]} "
        f"({KEPT[1]}) {KEPT[2]}: {KEPT[3]} {KEPT[4]}; ref TCK-12345; not a card: {KEPT[5]}."
    )
    masked = scrub(text)
    assert masked == (
        "Hi, I'm at [EMAIL] or [PHONE], card [CARD] was charged for order BN-354162 (W1234567) on "
        "2026-11-30: $1,188.00 at 2pm; ref [TICKET_REF]; not a card: 1234 5678 9012 3456."
    )
    for planted in EMAILS + PHONES + CARDS:
        assert scrub(f"contact {planted} please") == "contact [{}] please".format(
            "EMAIL" if planted in EMAILS else "PHONE" if planted in PHONES else "CARD"
        ), planted
    assert scrub.report()["masked"]["TICKET_REF"] == 1
    off = Scrubber.from_spec(Scrub(email=False))
    assert off(EMAILS[1]) == EMAILS[1] and "EMAIL" not in off.report()["masked"]


class _Recorder(BaseHTTPRequestHandler):
    """An OpenAI-compatible teacher that records every request body it is sent."""

    bodies: list[str] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        type(self).bodies.append(body)
        answer = LABELS[len(type(self).bodies) % len(LABELS)]
        data = json.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": "recorder",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _logs(path: Path) -> list[str]:
    """30 gateway records (and two stored-completion ones) with PII planted in the user turns."""
    planted = EMAILS + PHONES + CARDS
    lines = []
    for i in range(30):
        pii = planted[i % len(planted)]
        user = f"Ticket {i} about {LABELS[i % 4]}: reach me at {pii}, thanks. My name is on the order BN-{354100 + i}."
        lines.append(
            {
                "messages": [
                    {"role": "system", "content": f"You are a support bot. Escalate to {EMAILS[2]}."},
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": f"Noted, we will call {PHONES[1]}."},
                ]
            }
        )
    lines.append(
        {"id": "chatcmpl-x", "request": {"messages": [{"role": "user", "content": f"refund to card {CARDS[1]}"}]}}
    )
    lines.append(
        {"id": "chatcmpl-y", "input": [{"role": "user", "content": [{"type": "text", "text": f"mail {EMAILS[1]}"}]}]}
    )
    lines.append({"messages": [{"role": "user", "content": "Ticket 0 repeated"}]})
    lines.append({"messages": [{"role": "user", "content": "Ticket 0 repeated"}]})
    lines.append("not json")
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l) for l in lines) + "\n")
    return planted


def _forms(value: str) -> list[str]:
    """The value as written and as bare digits (a number must not survive reformatted either)."""
    digits = re.sub(r"\D", "", value)
    return [value] + ([digits] if len(digits) >= 7 else [])


def test_no_planted_pii_reaches_the_teacher_the_cache_or_a_build_file(project, tmp_path_factory, monkeypatch):
    from distillbuild.pipeline.runner import run_stage
    from distillbuild.spec import load_spec

    root = project.root
    raw = tmp_path_factory.mktemp("outside-the-repo") / "gateway.jsonl"  # the raw logs never enter the repository
    planted = _logs(raw)
    _Recorder.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = base_spec()
        spec["teacher"] = {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "api_key_env": "LOG_TEACHER_KEY",
            "base_url": f"http://127.0.0.1:{server.server_address[1]}/v1",
            "max_retries": 0,
            "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
        }
        spec["filters"] = {"min_confidence": 0, "dedup": {"exact": True}, "min_rows_per_label": 0}
        spec["data"]["scrub"] = {"patterns": [{"name": "order", "regex": r"BN-\d{6}"}]}
        path = project(spec)
        (root / "data/inputs.jsonl").unlink()
        result = CliRunner().invoke(main, ["import-logs", str(raw), "--spec", str(path)])
        assert result.exit_code == 0, result.output
        report = json.loads((root / "data/inputs.scrub.json").read_text())
        assert report["inputs"] == 33 and report["skipped"] == {"unreadable": 1, "repeated": 1}
        # Every planted value once: 3 of each 10 records an address, 4 a phone, 3 a card; plus the two stored ones.
        masked = {kind: n for kind, n in report["scrub"]["masked"].items() if n}  # every kind is listed, 0 or not
        assert masked == {"CARD": 10, "EMAIL": 10, "PHONE": 12, "ORDER": 30}
        monkeypatch.setenv("LOG_TEACHER_KEY", "sk-log-test-key-000000000000")
        monkeypatch.setenv("DISTILL_CACHE_DIR", str(root / ".distill/cache"))
        monkeypatch.chdir(root)
        loaded = load_spec(path)
        for stage in ("teacher", "filter", "dataset"):
            assert run_stage(stage, loaded) == 0, stage
    finally:
        server.shutdown()
    requests = "\n".join(_Recorder.bodies)
    assert len(_Recorder.bodies) >= 33 and "[EMAIL]" in requests and "[CARD]" in requests
    files = [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]
    assert any(p.suffix == ".sqlite" for p in files) and (root / "build/dataset").is_dir()
    contents = {p: p.read_bytes() for p in files}
    for value in planted:
        for form in _forms(value):
            assert form not in requests, f"{form} reached the teacher"
            leaked = [str(p.relative_to(root)) for p, data in contents.items() if form.encode() in data]
            assert not leaked, f"{form} is in {leaked}"
    assert "[EMAIL]" in (root / "data/inputs.jsonl").read_text()


def test_import_logs_refuses_to_overwrite_and_checks_the_rules(project, tmp_path):
    from distillbuild.errors import SpecError
    from distillbuild.spec import load_spec

    raw = tmp_path / "logs.jsonl"
    _logs(raw)
    path = project(base_spec())
    result = CliRunner().invoke(main, ["import-logs", str(raw), "--spec", str(path)])
    assert result.exit_code == 2 and "--force" in result.output
    spec = base_spec()
    spec["data"]["scrub"] = {"patterns": [{"name": "bad", "regex": "(unclosed"}]}
    with pytest.raises(SpecError, match=r"data.scrub.patterns\[0\].regex"):
        load_spec(project(yaml.safe_dump(spec)))


def test_a_stray_byte_or_an_empty_content_part_spoils_a_row_not_the_import(tmp_path):
    from distillbuild.curate.log_import import import_logs

    raw = tmp_path / "logs.jsonl"
    raw.write_bytes(
        b'{"messages": [{"role": "user", "content": "caf\xe9 order for bob@example.com"}]}\n'
        b'{"messages": [{"role": "user", "content": [{"type": "text", "text": null}]}]}\n'
    )
    rows, report = import_logs([raw], Scrubber())
    assert [r["text"] for r in rows] == ["caf\ufffd order for [EMAIL]"]
    assert report["skipped"] == {"no_user_message": 1}
