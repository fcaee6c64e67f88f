"""The metrics `evaluate` writes to metrics.json, by task type: the names a gate may use.

A base module, because two layers read it: the spec validator (a gate naming a metric that is
never computed is refused before anything runs) and the evaluation engine that computes them.
"""

# Metrics with a bootstrap 95% interval, written as NAME_ci_low and NAME_ci_high; a gate picks
# one with `bound: ci_low`.
WITH_INTERVALS = ("accuracy", "teacher_accuracy", "retention", "field_accuracy", "exact_match", "routed_accuracy")

# Written for each of data.heldout_sets as NAME@SET (accuracy@recent, with its interval).
HELDOUT_SET_METRICS = ("accuracy", "macro_f1", "heldout_rows")

# Written by evaluate when the spec has student.preference: the SFT student before DPO, scored on
# the same held-out rows, the gain DPO brought and the exact McNemar p-value of that paired
# difference; `preference_gain: {min: 0}` with `preference_gain_p: {max: 0.05}` promotes only a
# DPO step that measurably helped. Beside them, for reports: sft_accuracy's interval and the SFT
# student's latency (sft_latency_p50_ms, sft_latency_p95_ms), and each row's sft_predicted.
PREFERENCE_METRICS = ("sft_accuracy", "preference_gain", "preference_gain_p")

# Written by evaluate when evaluation.compare_with names another variant's predictions on the same
# held-out rows (classification): that variant's accuracy, this one's gain over it and the exact
# McNemar p-value; `compared_gain: {min: 0}` with `compared_gain_p: {max: 0.05}` promotes the better one.
COMPARED_METRICS = ("compared_accuracy", "compared_gain", "compared_gain_p")

# Written by the route stage (build/route/report.json) when the spec has a `route` section; gates
# may name them then.
ROUTE_METRICS = ("routed_accuracy", "teacher_share", "routed_cost_per_1k_usd")

# Written for classification and extraction alike: how often the student agrees with the teacher,
# its latency, the held-out size and what a thousand answers cost from each.
_STUDENT_VS_TEACHER = (
    "agreement",
    "latency_p50_ms",
    "latency_p95_ms",
    "heldout_rows",
    "teacher_cost_per_1k_usd",
    "student_cost_per_1k_usd",
)

# What the machine measured rather than the build decided: latency, throughput and what follows
# from them (the student's serving cost), the machine, and what a judge's calls cost this run (none
# from the cache). Kept apart from metrics.json and the route report, under
# .distill/runs, out of DVC's hashes (distillbuild/measurements.py): a rebuild of unchanged inputs
# rewrites no hashed byte. A gate may still bound them; its record keeps the verdict, and the
# figure it saw stays in the gate's own run file.
# What a judge's report (llm/judge.py's JudgeStats.as_dict, under `judge`) says of this run:
# its calls, paid and cached, their tokens and dollars, and its seconds.
JUDGE_MEASURED = tuple(f"judge.{k}" for k in ("calls", "errors", "tokens", "cost_usd", "seconds"))

MEASURED_METRICS = (
    "latency_p50_ms",
    "latency_p95_ms",
    "latency",
    "batch_throughput_rows_per_s",
    "student_cost_per_1k_usd",
    "sft_latency_p50_ms",
    "sft_latency_p95_ms",
    "routed_cost_per_1k_usd",
    "judge_cost_usd",
    *JUDGE_MEASURED,
)

# The metrics `evaluate` writes to metrics.json, by task type. Gates may only name these;
# the spec validator checks it, so a typo in a gate is refused before anything runs.
METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "classification": (
        "accuracy",
        "teacher_accuracy",
        "retention",
        "baseline_accuracy",
        "macro_f1",
        "teacher_macro_f1",
    )
    + _STUDENT_VS_TEACHER,
    # distillbuild/evaluate/extraction.py (DeepEval JsonCorrectnessMetric + field-match metrics):
    # field_accuracy is the mean over fields of per-field exact match; retention is
    # field_accuracy / teacher_field_accuracy; exact_match is the whole object.
    "extraction": (
        "field_accuracy",
        "teacher_field_accuracy",
        "retention",
        "exact_match",
        "teacher_exact_match",
        "json_valid_rate",
        "teacher_json_valid_rate",
        "schema_valid_rate",
        "teacher_schema_valid_rate",
    )
    + _STUDENT_VS_TEACHER,
    # G-Eval with evaluation.judge (distillbuild/evaluate/generation.py): scores in 0..1;
    # retention = geval_mean / teacher_geval_mean, with a bootstrap interval.
    "generation": (
        "geval_mean",
        "geval_pass_rate",
        "teacher_geval_mean",
        "teacher_geval_pass_rate",
        "retention",
        "heldout_rows",
        "judge_cost_usd",
        "latency_p50_ms",
        "latency_p95_ms",
        "teacher_cost_per_1k_usd",
        "student_cost_per_1k_usd",
    ),
}


# What a gate's bound may be, by metric: a bound outside the range can never hold (or always
# holds), so the validator refuses it before a build is paid for. Shares, rates and scores lie in
# [0, 1]; retention is a ratio (a student may beat its teacher); times, costs and counts are >= 0.
_RATIO = ("retention",)
_NON_NEGATIVE = (
    "latency_p50_ms",
    "latency_p95_ms",
    "heldout_rows",
    "teacher_cost_per_1k_usd",
    "student_cost_per_1k_usd",
    "routed_cost_per_1k_usd",
    "judge_cost_usd",
)


def metric_range(name: str) -> tuple[float, float]:
    """(lowest, highest) value the metric can take."""
    name = name.split("@", 1)[0]  # accuracy@recent is an accuracy
    if name in _RATIO or name in _NON_NEGATIVE:
        return 0.0, float("inf")
    if name in ("preference_gain", "compared_gain"):  # a difference of accuracies
        return -1.0, 1.0
    return 0.0, 1.0


# Which figure a gate bounds: the metric (value) or an end of its interval. Written `bound:`;
# `on:` was its name until YAML 1.1 tools (PyYAML) were found to read that key as the boolean True.
GATE_FIGURE_KEY, GATE_FIGURE_OLD_KEY = "bound", "on"


def gate_figure(bound: dict) -> str:
    return bound.get(GATE_FIGURE_KEY, bound.get(GATE_FIGURE_OLD_KEY, "value"))
