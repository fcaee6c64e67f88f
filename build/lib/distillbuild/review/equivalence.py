"""Is a rebuild the recorded build? IDENTICAL, EQUIVALENT or DIFFERENT, and why.

IDENTICAL: every recorded hash and metric matches.
EQUIVALENT: some outputs' bytes differ, from the same inputs (the spec, the data and the stage
  settings DVC records): float arithmetic that depends on the machine (thread counts, the CPU's
  vector units, library builds) took training elsewhere. It still behaves as the record says:
  the held-out predictions agree on at least `min_agreement` of the rows, every gated metric
  with a bootstrap interval lies inside the recorded 95% interval, and every gate decides as
  recorded.
DIFFERENT: anything else (an input changed, the predictions or a gated metric moved).

Both name the first stage, in pipeline order, whose outputs differ, from the two `dvc.lock`s:
whether its inputs changed or the same inputs gave other outputs.
"""

from __future__ import annotations

from typing import Any

from distillbuild.metric_names import MEASURED_METRICS, WITH_INTERVALS

IDENTICAL, EQUIVALENT, DIFFERENT = "IDENTICAL", "EQUIVALENT", "DIFFERENT"
EXIT_CODES = {IDENTICAL: 0, DIFFERENT: 1, EQUIVALENT: 4}
DEFAULT_MIN_AGREEMENT = 0.995


def _hashes(entries: list[dict[str, Any]] | None, apart: tuple[str, ...]) -> dict[str, Any]:
    return {e["path"]: e.get("md5") or e.get("hash") for e in entries or [] if e["path"] not in apart}


def first_divergence(
    recorded_lock: dict[str, Any], rebuilt_lock: dict[str, Any], record_files: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    """The first stage (in the rebuilt lock's order, which is the pipeline's) whose outputs differ
    from the recorded lock's, with the inputs (files, params) that differ; None when none do.
    `record_files` (the gate's decision and model card) name the commit they were written at,
    which a rebuild of a committed build never shares: they are compared through their lineage."""
    then_stages, now_stages = recorded_lock.get("stages") or {}, rebuilt_lock.get("stages") or {}
    for name, now in now_stages.items():
        then = then_stages.get(name)
        if then is None:
            return {"stage": name, "outputs": [], "inputs": [], "cause": "the record has no such stage"}
        outs_then, outs_now = _hashes(then.get("outs"), record_files), _hashes(now.get("outs"), record_files)
        outputs = sorted(p for p in outs_then.keys() | outs_now.keys() if outs_then.get(p) != outs_now.get(p))
        if not outputs:
            continue
        deps_then, deps_now = _hashes(then.get("deps"), record_files), _hashes(now.get("deps"), record_files)
        inputs = sorted(p for p in deps_then.keys() | deps_now.keys() if deps_then.get(p) != deps_now.get(p))
        if (then.get("params") or {}) != (now.get("params") or {}):
            inputs.append("params (distill.yaml keys it reads)")
        cause = (
            f"its inputs changed ({', '.join(inputs)})"
            if inputs
            else f"the same inputs gave other outputs ({', '.join(outputs)}): arithmetic that depends on the "
            "machine (thread count, CPU, library builds)"
        )
        return {"stage": name, "outputs": outputs, "inputs": inputs, "cause": cause}
    return None


def _prediction_key(row: dict[str, Any]) -> tuple[Any, Any]:
    return row.get("id"), row.get("field")


def _prediction(row: dict[str, Any]) -> Any:
    return row.get("student_answer", row.get("predicted"))


def prediction_agreement(recorded: list[dict[str, Any]], rebuilt: list[dict[str, Any]]) -> dict[str, Any]:
    """How many held-out rows the rebuilt student answers as the recorded one did (a row missing
    on either side counts as a disagreement)."""
    then = {_prediction_key(r): _prediction(r) for r in recorded}
    now = {_prediction_key(r): _prediction(r) for r in rebuilt}
    rows = len(then.keys() | now.keys())
    same = sum(1 for k in then.keys() & now.keys() if then[k] == now[k])
    return {"rows": rows, "same": same, "share": round(same / rows, 6) if rows else None}


def gated_metrics(
    recorded_gates: list[dict[str, Any]],
    rebuilt_gates: list[dict[str, Any]],
    metrics_then: dict[str, Any],
    metrics_now: dict[str, Any],
) -> list[dict[str, Any]]:
    """Each recorded gate: its verdict then and now and, for a metric with a bootstrap interval, the
    rebuilt figure against the recorded 95% interval. Gates on measured figures (latency) are the
    machine's, and are left out."""
    now_by_gate = {g["gate"]: g for g in rebuilt_gates}
    out = []
    for gate in recorded_gates:
        name = gate["gate"].split(" (")[0]
        if name in MEASURED_METRICS or gate.get("measured"):
            continue
        row: dict[str, Any] = {"gate": gate["gate"], "metric": name, "pass_then": gate["pass"]}
        row["pass_now"] = (now_by_gate.get(gate["gate"]) or {}).get("pass")
        row["holds"] = row["pass_then"] == row["pass_now"]
        low, high = metrics_then.get(f"{name}_ci_low"), metrics_then.get(f"{name}_ci_high")
        if name in WITH_INTERVALS and low is not None and high is not None:
            value = metrics_now.get(name)
            row.update(recorded=metrics_then.get(name), interval=[low, high], rebuilt=value)
            row["holds"] = row["holds"] and isinstance(value, (int, float)) and low <= value <= high
        out.append(row)
    return out


def verdict(
    identical: bool,
    divergence: dict[str, Any] | None,
    agreement: dict[str, Any],
    gates: list[dict[str, Any]],
    min_agreement: float,
) -> str:
    if identical:
        return IDENTICAL
    same_inputs = divergence is not None and not divergence["inputs"]
    agrees = agreement["share"] is not None and agreement["share"] >= min_agreement
    return EQUIVALENT if same_inputs and agrees and all(g["holds"] for g in gates) else DIFFERENT
