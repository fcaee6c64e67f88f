"""Progress: plain lines in logs (throttled, one at the end), a bar on a terminal, nothing more after a failure."""

from __future__ import annotations

import pytest

from distillbuild import console
from distillbuild.console import Progress

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`


def line(done: int, total: int, rate: float, eta_s: float | None) -> str:
    return f"work: {done}/{total}, ETA {console.eta_text(eta_s)}"


def test_plain_lines_are_throttled_and_the_last_one_is_always_written(monkeypatch):
    lines: list[str] = []
    with Progress("work", 5, line, log=lines.append, bar=False) as progress:
        for _ in range(5):
            progress.advance()
    assert lines == ["work: 5/5, ETA 0s"]  # all within the interval: only the closing line
    monkeypatch.setattr(console, "PLAIN_INTERVAL_S", 0.0)
    lines.clear()
    with Progress("work", 3, line, log=lines.append, bar=False) as progress:
        for _ in range(3):
            progress.advance()
    assert [ln.split(",")[0] for ln in lines] == ["work: 1/3", "work: 2/3", "work: 3/3", "work: 3/3"]


def test_a_failure_leaves_no_closing_line():
    lines: list[str] = []
    with pytest.raises(RuntimeError):
        with Progress("work", 2, line, log=lines.append, bar=False) as progress:
            progress.advance()
            raise RuntimeError("boom")
    assert lines == []


def test_the_bar_ends_in_one_plain_line(capsys):
    lines: list[str] = []
    with Progress("work", 2, line, log=lines.append, bar=True) as progress:
        progress.advance(2)
    assert lines == ["work: 2/2, ETA 0s"]


def test_plain_when_asked_or_not_a_terminal(monkeypatch):
    monkeypatch.setenv("DISTILL_PROGRESS", "plain")
    assert console.interactive() is False


def test_slow_rates_are_not_zero():
    assert [console.rate_text(r) for r in (340.2, 2.54, 0.34, 0.0)] == ["340/s", "2.5/s", "0.34/s", "0.00/s"]
