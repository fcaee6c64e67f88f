"""Does the quickstart's latency gate hold on a busy machine?

Runs `dvc repro -f -s evaluate` then `dvc repro -s gate` in the quickstart N times with nothing
else running, then N times while another process keeps one core busy, and prints each run's
latency p50/p95 (the medians of evaluation.latency_rounds rounds), the spread of the rounds, the
gate's verdict, and the loaded/idle ratio of the medians from this one run. It rewrites the
quickstart's build (metrics.json, decision.json, dvc.lock) as any rebuild does; the latency
figures themselves are this machine's, kept under .distill/runs (distillbuild/measurements.py).

    .venv/bin/python bench/latency_gate_under_load.py            # 5 idle + 5 loaded runs, ~6 minutes on 2 cores
    .venv/bin/python bench/latency_gate_under_load.py --runs 2   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
from pathlib import Path

from distillbuild.measurements import read_report

ROOT = Path(__file__).resolve().parents[1]


def _spin() -> None:
    while True:
        pass


def one_run() -> dict:
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    for command in (["dvc", "repro", "-f", "-s", "evaluate"], ["dvc", "repro", "-s", "gate"]):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode not in (0, 1):  # 1: a failed gate, a result here
            sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    metrics = read_report(ROOT / "build/evaluate/metrics.json")
    decision = json.loads((ROOT / "build/gate/decision.json").read_text())
    gate = next(g for g in decision["gates"] if g["gate"] == "latency_p95_ms")
    lat = metrics.get("latency") or {}
    return {
        "p50": metrics["latency_p50_ms"],
        "p95": metrics["latency_p95_ms"],
        "rounds_p95": lat.get("rounds_p95_ms"),
        "load": (lat.get("machine") or {}).get("load_average_after"),
        "latency_gate": gate["pass"],
        "required": gate["required"],
        "verdict": decision["verdict"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"idle": [], "one core busy": []}
    for condition in results:
        spinner = multiprocessing.Process(target=_spin, daemon=True) if condition != "idle" else None
        if spinner:
            spinner.start()
        try:
            for i in range(args.runs):
                results[condition].append(one_run())
                r = results[condition][-1]
                print(
                    f"{condition:14s} run {i + 1}: p50 {r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms  rounds p95 "
                    f"{r['rounds_p95']}  load {r['load']}  latency gate {'pass' if r['latency_gate'] else 'FAIL'} "
                    f"({r['required']})  verdict {r['verdict']}",
                    file=sys.stderr,
                )
        finally:
            if spinner:
                spinner.terminate()
    print(f"\n{'condition':14s} {'p50 median':>11s} {'p95 median':>11s} {'p95 max':>8s} {'latency gate passed':>20s}")
    medians = {}
    for condition, runs in results.items():
        medians[condition] = (statistics.median(r["p50"] for r in runs), statistics.median(r["p95"] for r in runs))
        print(
            f"{condition:14s} {medians[condition][0]:9.1f} ms {medians[condition][1]:9.1f} ms "
            f"{max(r['p95'] for r in runs):6.1f} ms {sum(r['latency_gate'] for r in runs):>12d} of {len(runs)}"
        )
    idle, busy = medians["idle"], medians["one core busy"]
    print(f"loaded / idle, same run: p50 {busy[0] / idle[0]:.2f}x, p95 {busy[1] / idle[1]:.2f}x")
    print(json.dumps({"results": results}))
    return 0 if all(r["latency_gate"] for r in results["one core busy"]) else 1


if __name__ == "__main__":
    sys.exit(main())
