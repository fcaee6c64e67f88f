"""Student trainers: encoder classifiers and extractors on CPU, causal LMs through Axolotl."""

# What a training run's report says of this machine, not of the model: its duration and GPUs
# (kept apart, out of DVC's hashes: distillbuild/measurements.py).
MEASURED = ("seconds", "gpus")
