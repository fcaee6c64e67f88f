"""Teacher throughput: distillbuild's `answer_all` side by side with the loop users write first,
with its own ceilings, and with a peer (Bespoke Curator), all in one run.

    .venv/bin/python bench/teacher_throughput.py [--quick] [--curator-python /tmp/curator-venv/bin/python] [--json PATH]

The machine is shared and noisy: only ratios measured in the same run mean anything, so every
number below comes from this one run. See docs/benchmarks.md for what each line means.

Layout: this (parent) process runs the simulated teacher server (distillbuild's
SimulatedTeacherServer, an OpenAI-compatible HTTP server on 127.0.0.1) and does nothing else
while a measurement runs, so its CPU time is the server's. Every client runs in a process of its
own, so its CPU time is its own and it does not share a GIL with the server: distillbuild's
clients in one spawned worker of this virtualenv, Curator in a subprocess of its own virtualenv
(bench/_curator_child.py). Each distillbuild run gets a fresh, empty cache file, so every request
reaches the server (checked against the server's own count).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillbuild.endpoints.standin.server import SimulatedTeacherServer
from distillbuild.endpoints.standin.teacher import KeyEntry, SimulatedTeacher
from distillbuild.llm.cache import TeacherCache
from distillbuild.llm.engine import answer_all
from distillbuild.llm.settings import TeacherSettings
from distillbuild.protocol.prompts import messages_for
from distillbuild.spec.model import Task, build

HERE = Path(__file__).resolve().parent
LATENCY_MS = 100
BUSY = 0.75  # a process using this much of a core over the whole run (ramp and tail included) is CPU-bound

# --- the workload: N short synthetic support tickets over 10 labels, the same on every run -------

LABELS = [
    "billing",
    "refund",
    "login",
    "bug",
    "feature_request",
    "shipping",
    "cancellation",
    "account_update",
    "security",
    "performance",
]
CONFUSION = {
    "billing": "refund",
    "refund": "billing",
    "login": "security",
    "bug": "performance",
    "feature_request": "bug",
    "shipping": "cancellation",
    "cancellation": "refund",
    "account_update": "login",
    "security": "login",
    "performance": "bug",
}
PHRASES = {
    "billing": ("I was charged twice for {p} this month", "the invoice for {p} shows the wrong amount"),
    "refund": ("please refund my last payment for {p}", "I want my money back for {p}"),
    "login": ("I cannot sign in to {p} since yesterday", "the password reset link for {p} never arrives"),
    "bug": ("{p} crashes when I export a report", "the save button in {p} does nothing"),
    "feature_request": ("could {p} support dark mode", "please add CSV import to {p}"),
    "shipping": ("my order for {p} has not arrived", "the tracking number for {p} is invalid"),
    "cancellation": ("how do I cancel {p}", "stop renewing {p} at the end of the month"),
    "account_update": ("change the email address on {p}", "update the company name shown in {p}"),
    "security": ("someone else logged in to {p} from abroad", "I think my key for {p} leaked"),
    "performance": ("{p} takes a minute to load every page", "searching in {p} is very slow today"),
}
PRODUCTS = (
    "the Pro plan",
    "the mobile app",
    "the API",
    "my team workspace",
    "the desktop client",
    "the starter plan",
    "the analytics add-on",
)
TASK = build(
    Task,
    {
        "type": "classification",
        "instruction": "You triage customer-support tickets for a software company. Answer with the single "
        "category that fits the ticket best: the category name only.",
        "labels": LABELS,
    },
)


def tickets(n: int) -> list[tuple[str, str]]:
    """(text, gold label) for ticket 0..n-1; ticket i is the same in every run and every size."""
    out = []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        phrase = PHRASES[label][(i // len(LABELS)) % 2]
        product = PRODUCTS[(i // (2 * len(LABELS))) % len(PRODUCTS)]
        out.append((f"Ticket {i:05d}: {phrase.format(p=product)}.", label))
    return out


def prompts(n: int) -> list[list[dict[str, str]]]:
    return [messages_for(TASK, text) for text, _ in tickets(n)]


def make_teacher(n: int) -> SimulatedTeacher:
    key = {text: KeyEntry(label, (CONFUSION[label],)) for text, label in tickets(n)}
    return SimulatedTeacher(key, LABELS, accuracy=0.93, seed=7)


def teacher_settings(base_url: str, concurrency: int) -> TeacherSettings:
    """The quickstart's generation settings (distill.yaml): 8 tokens, top-5 logprobs, temperature 0."""
    return TeacherSettings(
        endpoint_id="bench:simulated",
        base_url=base_url,
        model="gpt-4o-sim",
        temperature=0,
        max_tokens=8,
        top_logprobs=5,
        seed=None,
        concurrency=concurrency,
        timeout_s=60,
        max_retries=2,
    )


def settings_rpm(settings: TeacherSettings) -> float | None:
    """The client's requests-per-minute limit, if its settings have one and it is set."""
    for name in ("requests_per_minute", "rpm", "max_requests_per_minute"):
        value = getattr(settings, name, None)
        if value:
            return float(value)
    return None


def ceiling(concurrency: int, latency_ms: float, rpm: float | None) -> float | None:
    """min(concurrency / latency, rpm / 60): what a client that costs nothing could reach."""
    if latency_ms <= 0:
        return None
    return min(concurrency / (latency_ms / 1000.0), rpm / 60.0 if rpm else math.inf)


# --- client side: these run in the spawned worker process, never in the server's process ----------


def _client_warm_up() -> str:
    import openai  # noqa: F401 - imports paid before any timing

    return openai.__version__


def _client_sequential(base_url: str, n: int) -> dict[str, Any]:
    """The loop users write first: the sync client, one request after the other."""
    import openai

    settings = teacher_settings(base_url, 1)
    bodies = [settings.body(m) for m in prompts(n)]
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=2, timeout=60)
    gc.collect()
    cpu0, t0 = time.process_time(), time.perf_counter()
    answers = [client.chat.completions.create(**body).choices[0].message.content for body in bodies]
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    client.close()
    return {"n": n, "ok": sum(1 for a in answers if a), "wall_s": wall, "cpu_s": cpu, "errors": {}}


def _client_answer_all(base_url: str, n: int, concurrency: int) -> dict[str, Any]:
    """distillbuild's engine, end to end (keys, cache lookup and writes included), on a fresh cache."""
    requests = prompts(n)
    settings = teacher_settings(base_url, concurrency)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        cache = TeacherCache(Path(tmp) / "teacher.sqlite")
        gc.collect()
        cpu0, t0 = time.process_time(), time.perf_counter()
        results, stats = answer_all(requests, settings, cache, log=lambda message: None)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        cache.close()
    ok = sum(1 for r in results if r is not None and r.response is not None)
    return {
        "n": n,
        "ok": ok,
        "wall_s": wall,
        "cpu_s": cpu,
        "errors": dict(stats.errors),
        "cache_hits": stats.cache_hits,
        "rpm": settings_rpm(settings),
    }


# --- parent side: one small function per measurement ----------------------------------------------


@dataclass(frozen=True)
class Plan:
    sequential: int
    main: int  # concurrency 16
    wide: int  # concurrency 64 and 256
    zero: int  # zero latency
    peer: int  # Curator and distillbuild on the same requests

    @classmethod
    def choose(cls, quick: bool) -> "Plan":
        return cls(30, 1000, 1000, 1000, 500) if quick else cls(100, 5000, 5000, 5000, 1000)


def _on_server(pool: ProcessPoolExecutor, server: SimulatedTeacherServer, fn, *args) -> dict[str, Any]:
    """Run one client measurement in the worker; add the server's CPU time and request count."""
    served0, cpu0 = server.requests_served, time.process_time()
    result = pool.submit(fn, server.base_url, *args).result()
    result["server_cpu_s"] = time.process_time() - cpu0
    result["served"] = server.requests_served - served0
    return result


def measure_sequential(pool, server, n: int) -> dict[str, Any]:
    r = _on_server(pool, server, _client_sequential, n)
    return finish_row(r, "sequential, sync OpenAI, 1 at a time", "distillbuild-free", 1, LATENCY_MS)


def measure_answer_all(pool, server, n: int, concurrency: int, latency_ms: float, name: str) -> dict[str, Any]:
    r = _on_server(pool, server, _client_answer_all, n, concurrency)
    return finish_row(r, name, "distillbuild", concurrency, latency_ms)


def measure_curator(curator_python: str, server, n: int, concurrency: int) -> dict[str, Any]:
    """Curator in its own virtualenv and process, on the same server and the same requests."""
    with tempfile.TemporaryDirectory(prefix="bench-curator-") as work:
        prompt_file = Path(work) / "prompts.json"
        prompt_file.write_text(json.dumps(prompts(n)), encoding="utf-8")
        command = [
            curator_python,
            str(HERE / "_curator_child.py"),
            "--base-url",
            server.base_url,
            "--prompts",
            str(prompt_file),
            "--concurrency",
            str(concurrency),
            "--workdir",
            work,
        ]
        served0, cpu0 = server.requests_served, time.process_time()
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"name": "Curator", "error": f"{type(exc).__name__}: {exc}"}
        server_cpu, served = time.process_time() - cpu0, server.requests_served - served0
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"name": "Curator", "error": f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}"}
    r = json.loads(lines[-1])
    r.update(server_cpu_s=server_cpu, served=served, errors={"failed": r["failed"]} if r.get("failed") else {})
    return finish_row(r, f"Curator {r['version']}, same requests", "curator", concurrency, LATENCY_MS)


def finish_row(r: dict[str, Any], name: str, client: str, concurrency: int, latency_ms: float) -> dict[str, Any]:
    ok, wall = r["ok"], r["wall_s"]
    cap = ceiling(concurrency, latency_ms, r.get("rpm"))
    row = {
        "name": name,
        "client": client,
        "n": r["n"],
        "ok": ok,
        "served": r["served"],
        "errors": r.get("errors") or {},
        "concurrency": concurrency,
        "latency_ms": latency_ms,
        "wall_s": round(wall, 3),
        "req_per_s": ok / wall,
        "ceiling_req_per_s": cap,
        "vs_ceiling": ok / wall / cap if cap else None,
        "client_cpu_per_wall": r["cpu_s"] / wall,
        "client_cpu_ms_per_req": 1000 * r["cpu_s"] / max(ok, 1),
        "server_cpu_per_wall": r["server_cpu_s"] / wall,
        "server_cpu_ms_per_req": 1000 * r["server_cpu_s"] / max(ok, 1),
    }
    row["bound"] = bound(row)
    return row


def bound(row: dict[str, Any]) -> str:
    """What limits this run, judged from where the CPU went (2 cores: client and server get one each)."""
    if row["vs_ceiling"] is not None and row["vs_ceiling"] >= 0.9:
        return "latency"
    client, server = row["client_cpu_per_wall"], row["server_cpu_per_wall"]
    if client >= BUSY and server >= BUSY:
        return "both CPUs"
    if client >= BUSY:
        return "client CPU"
    if server >= BUSY:
        return "server CPU"
    if client + server >= 2 * BUSY:
        return "machine CPU"
    return "latency+overhead"


# --- report -----------------------------------------------------------------------------------------


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(rows: list[dict[str, Any]], sequential_rps: float) -> str:
    head = (
        f"{'measurement':<38} {'n':>5} {'conc':>4} {'lat':>5} {'req/s':>6} {'ceil':>5} {'vs ceil':>7} "
        f"{'vs seq':>6} {'cli cpu':>7} {'cli ms/req':>10} {'srv cpu':>7} {'srv ms/req':>10}  bound"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['name']:<38} failed: {r['error'].splitlines()[-1][:150]}")
            continue
        lines.append(
            f"{r['name']:<38} {r['n']:>5} {r['concurrency']:>4} {r['latency_ms']:>3.0f}ms {r['req_per_s']:>6.0f} "
            f"{_f(r['ceiling_req_per_s'], '5.0f'):>5} {_f(r['vs_ceiling'], '.2f'):>7} "
            f"{r['req_per_s'] / sequential_rps:>6.2f} {r['client_cpu_per_wall']:>7.2f} "
            f"{r['client_cpu_ms_per_req']:>10.2f} "
            f"{r['server_cpu_per_wall']:>7.2f} {r['server_cpu_ms_per_req']:>10.2f}  {r['bound']}"
            + (f"  ERRORS {r['errors']} ok={r['ok']}" if r["ok"] < r["n"] or r["errors"] else "")
        )
    return "\n".join(lines)


def checks(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    seq, c16 = rows["sequential"], rows["c16"]
    out = [
        {"check": "answer_all c16 / sequential", "value": c16["req_per_s"] / seq["req_per_s"], "target": 12.0},
        {"check": "answer_all c16 / ceiling", "value": c16["vs_ceiling"], "target": 0.9},
    ]
    peer, ours = rows.get("curator"), rows.get("c16_peer")
    if peer and ours and "error" not in peer:
        out.append(
            {
                "check": "distillbuild / Curator (c16, same requests)",
                "value": ours["req_per_s"] / peer["req_per_s"],
                "target": 1.0,
            }
        )
    for c in out:
        c["pass"] = c["value"] >= c["target"]
    return out


def notes(rows: dict[str, dict[str, Any]]) -> list[str]:
    """What limits the wide runs, in words."""
    out = []
    z64, z128 = rows["zero64"], rows.get("zero128")
    client_core = 1000 / z64["client_cpu_ms_per_req"]
    server_core = 1000 / z64["server_cpu_ms_per_req"]
    out.append(
        f"zero latency: the client costs {z64['client_cpu_ms_per_req']:.2f} ms CPU per request (one core: "
        f"~{client_core:.0f} req/s), the server {z64['server_cpu_ms_per_req']:.2f} ms (~{server_core:.0f} req/s); "
        f"measured {z64['req_per_s']:.0f} req/s at 64 in flight"
        + (f", {z128['req_per_s']:.0f} at 128" if z128 else "")
        + "."
    )
    if z128 and z128["req_per_s"] < 1.1 * z64["req_per_s"]:
        out.append(
            "zero latency: doubling the concurrency does not help (the CPU per request grows with it): "
            "the limit is the client's CPU, not the number in flight."
        )
    for key in ("c64", "c256"):
        r = rows[key]
        out.append(
            f"{r['concurrency']} in flight: {r['vs_ceiling']:.2f} of the latency ceiling, "
            f"{r['req_per_s'] / z64['req_per_s']:.2f} of the zero-latency rate; client CPU "
            f"{r['client_cpu_per_wall']:.2f}, "
            f"server CPU {r['server_cpu_per_wall']:.2f} of a core: {r['bound']}."
        )
    saturated = [r["name"] for r in rows.values() if "error" not in r and r["server_cpu_per_wall"] >= BUSY]
    out.append(
        "server: "
        + (
            f"its threads (one GIL) are saturated in: {', '.join(saturated)}; there the server, "
            "not the client, sets the pace."
            if saturated
            else f"never above {BUSY:.2f} of a core: the server is not the bottleneck in any run."
        )
    )
    served_wrong = [r["name"] for r in rows.values() if "error" not in r and r["served"] < r["ok"]]
    if served_wrong:
        out.append(f"WARNING: fewer requests reached the server than answers came back in: {', '.join(served_wrong)}.")
    return out


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (under a minute)")
    parser.add_argument("--curator-python", help="python of a virtualenv with bespokelabs-curator and bpe-openai")
    parser.add_argument("--json", type=Path, help="also write the JSON blob here")
    args = parser.parse_args()
    plan = Plan.choose(args.quick)
    teacher = make_teacher(max(plan.main, plan.wide, plan.zero, plan.peer, plan.sequential))
    started = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731 - progress on stderr

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        openai_version = pool.submit(_client_warm_up).result()
        with SimulatedTeacherServer(teacher, latency_ms=LATENCY_MS) as server:
            say(f"[1] sequential baseline, {plan.sequential} requests")
            rows["sequential"] = measure_sequential(pool, server, plan.sequential)
            say(f"[2] answer_all, 16 in flight, {plan.main} requests")
            rows["c16"] = measure_answer_all(pool, server, plan.main, 16, LATENCY_MS, "answer_all")
            say(f"[3] answer_all, 64 and 256 in flight, {plan.wide} requests each")
            rows["c64"] = measure_answer_all(pool, server, plan.wide, 64, LATENCY_MS, "answer_all")
            rows["c256"] = measure_answer_all(pool, server, plan.wide, 256, LATENCY_MS, "answer_all")
        with SimulatedTeacherServer(teacher, latency_ms=0) as server:
            say(f"[4] client ceiling: zero-latency server, 64 and 128 in flight, {plan.zero} requests each")
            rows["zero64"] = measure_answer_all(pool, server, plan.zero, 64, 0, "answer_all, zero-latency server")
            rows["zero128"] = measure_answer_all(pool, server, plan.zero, 128, 0, "answer_all, zero-latency server")
        if args.curator_python:
            with SimulatedTeacherServer(teacher, latency_ms=LATENCY_MS) as server:
                say(f"[5] peer: answer_all and Curator, 16 in flight, the same {plan.peer} requests")
                rows["c16_peer"] = measure_answer_all(
                    pool, server, plan.peer, 16, LATENCY_MS, "answer_all, same requests"
                )
                rows["curator"] = measure_curator(args.curator_python, server, plan.peer, 16)
        else:
            say("[5] peer: skipped (no --curator-python)")

    order = ["sequential", "c16", "c64", "c256", "zero64", "zero128", "c16_peer", "curator"]
    ordered = [rows[k] for k in order if k in rows]
    result = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "openai": openai_version},
        "plan": plan.__dict__,
        "seconds": round(time.perf_counter() - started, 1),
        "rows": ordered,
        "checks": checks(rows),
        "notes": notes(rows),
    }
    print(table(ordered, rows["sequential"]["req_per_s"]))
    print()
    for c in result["checks"]:
        print(f"{c['check']:<45} {c['value']:>6.2f}  (target >= {c['target']:.2f}: {'PASS' if c['pass'] else 'FAIL'})")
    if "curator" in rows and "error" in rows["curator"]:
        print(
            "distillbuild / Curator: not measured, Curator failed: "
            + rows["curator"]["error"].strip().splitlines()[-1]
            + " (the full error is in the JSON)"
        )
    print()
    for note in result["notes"]:
        print("- " + note)
    result = _rounded(result)
    blob = json.dumps(result, indent=1, default=str)
    if args.json:
        args.json.write_text(blob + "\n", encoding="utf-8")
    print()
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
