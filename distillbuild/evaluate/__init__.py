"""Evaluation engine: metrics of the student and the teacher on the held-out set."""

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
    ),
    "extraction": ("heldout_rows",),
    "generation": ("heldout_rows",),
}
