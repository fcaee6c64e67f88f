"""Evaluation engine: metrics of the student and the teacher on the held-out set."""

# Metrics with a bootstrap 95% interval, written as NAME_ci_low and NAME_ci_high; a gate picks
# one with `on: ci_low`.
WITH_INTERVALS = ("accuracy", "retention")

# The metrics `evaluate` writes to metrics.json, by task type. Gates may only name these;
# the spec validator checks it, so a typo in a gate is refused before anything runs.
METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "classification": (
        "accuracy",
        "teacher_accuracy",
        "retention",
        "macro_f1",
        "teacher_macro_f1",
        "agreement",
        "latency_p50_ms",
        "latency_p95_ms",
        "heldout_rows",
        "teacher_cost_per_1k_usd",
        "student_cost_per_1k_usd",
    ),
    "extraction": ("heldout_rows",),
    "generation": ("heldout_rows",),
}
