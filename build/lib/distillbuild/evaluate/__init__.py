"""Evaluation engine: metrics of the student and the teacher on the held-out set. The metric
names by task type, which gates may use, are in distillbuild/metric_names.py."""
