"""`gate`: promotion is refused unless every gate in `gates` holds.

Fails closed: a metric that is missing, not a number, or NaN fails its gate. Prints the
table of gate, required, observed and verdict, writes decision.json, and exits 1 on failure.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from distillbuild import layout
from distillbuild.errors import EXIT_GATE_FAILED
from distillbuild.io import read_json, write_json
from distillbuild.spec import Spec


def check(name: str, bound: dict[str, float], metrics: dict[str, Any]) -> dict[str, Any]:
    observed = metrics.get(name)
    required = " and ".join(f"{'>=' if k == 'min' else '<='} {v:g}" for k, v in bound.items() if k in ("min", "max"))
    row = {"gate": name, "required": required, "observed": observed, "pass": False, "reason": ""}
    if not isinstance(observed, (int, float)) or isinstance(observed, bool) or math.isnan(observed):
        row["reason"] = "metric missing or not a number"
        return row
    low, high = bound.get("min"), bound.get("max")
    if low is not None and observed < low:
        row["reason"] = f"below {low:g}"
    elif high is not None and observed > high:
        row["reason"] = f"above {high:g}"
    else:
        row["pass"] = True
    return row


def table(rows: list[dict[str, Any]]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else ("missing" if v is None else str(v))

    cells = [("gate", "required", "observed", "verdict")] + [
        (r["gate"], r["required"], fmt(r["observed"]), "pass" if r["pass"] else f"FAIL ({r['reason']})") for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(4)).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def run(spec: Spec) -> int:
    metrics_path = Path(layout.METRICS)
    metrics = read_json(metrics_path) if metrics_path.exists() else {}
    rows = [check(name, bound, metrics) for name, bound in spec["gates"].items()]
    passed = all(r["pass"] for r in rows)
    promote = spec.get("promote.name") or spec["name"]
    decision = {
        "verdict": "pass" if passed else "fail",
        "model": promote,
        "gates": rows,
        "teacher_simulated": spec.get("teacher.provider") == "simulated",
        "spec_sha256": spec.sha256,
        "metrics_sha256": _sha256(metrics_path),
    }
    write_json(Path(layout.DECISION), decision)
    print(table(rows))
    if passed:
        print(f"gate: PASS: {promote} may be promoted")
        return 0
    failed = ", ".join(r["gate"] for r in rows if not r["pass"])
    print(f"gate: FAIL ({failed}): {promote} is not promoted")
    return EXIT_GATE_FAILED
