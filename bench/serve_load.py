"""`distill serve` under load, beside what the same machine does with no server at all.

Prints, side by side in one run:

- the ceiling: the exported ONNX student answering in-process, no HTTP, in the best batched
  shape found on CPU (rows sorted by length into batches of 8, one onnxruntime thread per batch,
  one batch in flight per core), over the spec's held-out texts;
- the server (`distill serve SPEC` as a child process, as a user starts it) at 1, 16, 64 and
  256 concurrent clients: requests/s, failed requests (any status but 200, or a broken
  connection), p50 and p95 latency, throughput as a share of the ceiling, and the server's peak
  RSS (VmHWM) at the end.

The clients are aiohttp coroutines in this process, one keep-alive connection each, sending the
OpenAI chat request the SDK sends; they share the machine's cores with the server, as a sidecar
load balancer would not. Run it from the repository root after `make repro`:

    .venv/bin/python bench/serve_load.py                       # 20,000 requests at 256 clients: ~5 minutes
    .venv/bin/python bench/serve_load.py --requests 400 --last 2000   # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (1, 16, 64, 256)


def texts_of(spec_path: Path) -> list[str]:
    import yaml

    spec = yaml.safe_load(spec_path.read_text())
    heldout = spec_path.parent / spec["data"]["heldout"]
    return [json.loads(line)["text"] for line in heldout.open() if line.strip()]


def ceiling(model_dir: Path, texts: list[str], seconds: float, cores: int) -> float:
    """Rows/s of the ONNX graph in-process: sorted batches of 8, one per core at a time."""
    from distillbuild.export.onnx_classifier import OnnxClassifier

    clf = OnnxClassifier.load(model_dir, threads=1)
    ordered = sorted(texts, key=len)
    batches = [ordered[i : i + 8] for i in range(0, len(ordered), 8)]
    pool = ThreadPoolExecutor(cores)
    list(pool.map(clf.predict_proba, batches[:cores]))  # warm
    rows, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in pool.map(clf.predict_proba, batches):
            pass
        rows += len(ordered)
    return rows / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(spec_path: Path, extra: list[str], env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "distillbuild", "serve", str(spec_path), "--port", str(port), *extra]
    process = subprocess.Popen(
        command, cwd=spec_path.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {process.stderr.read().decode()[-2000:]}")
        for path in ("/ready", "/health"):  # /ready: loaded; an older server has /health only
            try:
                with urllib.request.urlopen(base + path, timeout=2) as response:
                    if response.status == 200:
                        return process, base
            except urllib.error.HTTPError as exc:
                if exc.code != 404:  # 503: loading
                    break
            except OSError:
                break
        time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not come up in 180 s")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(base: str, key: str | None, texts: list[str], clients: int, requests: int) -> dict:
    import aiohttp

    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    bodies = [json.dumps({"model": "student", "messages": [{"role": "user", "content": t}]}) for t in texts]
    latencies: list[float] = []
    failed: dict[str, int] = {}
    next_index = iter(range(requests))

    async def client(session) -> None:
        for i in next_index:
            started = time.perf_counter()
            try:
                async with session.post(base + "/v1/chat/completions", data=bodies[i % len(bodies)]) as r:
                    await r.read()
                    if r.status != 200:
                        failed[str(r.status)] = failed.get(str(r.status), 0) + 1
                        continue
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                failed[type(exc).__name__] = failed.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "clients": clients,
        "requests": requests,
        "per_s": len(latencies) / elapsed,
        "failed": sum(failed.values()),
        "failures": failed,
        "p50_ms": pct(0.5),
        "p95_ms": pct(0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "distill.yaml")
    parser.add_argument("--requests", type=int, default=2000, help="requests at 1, 16 and 64 clients")
    parser.add_argument("--last", type=int, default=20000, help="requests at 256 clients")
    parser.add_argument("--ceiling-seconds", type=float, default=15)
    parser.add_argument("--server-arg", action="append", default=[], help="passed to `distill serve` (repeat)")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)), help="concurrent clients, comma-separated")
    parser.add_argument("--label", default="distill serve", help="the server's name in the table")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    spec_path = args.spec.resolve()
    texts = texts_of(spec_path)
    cores = os.cpu_count() or 1
    model_dir = spec_path.parent / "build/export/model"
    rows_per_s = ceiling(model_dir, texts, args.ceiling_seconds, cores)
    print(f"ceiling: in-process ONNX, {len(texts)} held-out texts, {cores} cores: {rows_per_s:.1f} rows/s", flush=True)

    key = "sk-bench-" + secrets.token_hex(16)
    env = {**os.environ, "DISTILL_SERVE_API_KEYS": key, "DVC_NO_ANALYTICS": "1"}
    process, base = start_server(spec_path, args.server_arg, env)
    rows = []
    try:
        levels = [int(n) for n in args.levels.split(",")]
        for clients in levels:
            n = args.last if clients == max(LEVELS) else args.requests
            n = max(n, clients)
            row = asyncio.run(load(base, key, texts, clients, n))
            row["of_ceiling"] = row["per_s"] / rows_per_s
            rows.append(row)
            print(
                f"{args.label}: {clients:>3} clients, {n:>6} requests: {row['per_s']:7.1f} req/s "
                f"({row['of_ceiling']:.2f} of ceiling), failed {row['failed']} {row['failures'] or ''}, "
                f"p50 {row['p50_ms']:.0f} ms, p95 {row['p95_ms']:.0f} ms",
                flush=True,
            )
        rss = peak_rss_mib(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    print(f"server peak RSS: {rss:.0f} MiB")
    print()
    print("| clients | requests | req/s | of ceiling | failed | p50 | p95 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['clients']} | {r['requests']:,} | {r['per_s']:.0f} | {r['of_ceiling']:.2f} | {r['failed']} "
            f"| {r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms |"
        )
    if args.json:
        args.json.write_text(json.dumps({"ceiling_rows_per_s": rows_per_s, "rss_mib": rss, "levels": rows}, indent=2))


if __name__ == "__main__":
    main()
