"""Training on a Ray cluster (`execution.engine: ray`): the configure stage's Axolotl config with
Axolotl's Ray settings added at launch (`use_ray`, `ray_num_workers`, `resources_per_worker`).

The settings are added by the train stage, not written by configure: where a run happens is not
what it trains, and `execution` is in no cache key. The launch config is checked by Axolotl's
validator like any other before `axolotl train --use-ray` runs it; Ray Train then starts one
worker per GPU on the cluster RAY_ADDRESS names.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from distillbuild.spec.model import StageResources


def with_ray(config: dict[str, Any], resources: StageResources) -> dict[str, Any]:
    """The config with Axolotl's Ray Train settings from execution.train."""
    per_worker: dict[str, float] = {"GPU": resources.num_gpus if resources.num_gpus is not None else 1}
    if resources.num_cpus is not None:
        per_worker["CPU"] = resources.num_cpus
    return {
        **config,
        "use_ray": True,
        "ray_num_workers": resources.workers or config.get("ray_num_workers") or 1,
        "resources_per_worker": per_worker,
    }


def ray_launch_config(config_path: Path, resources: StageResources) -> Path:
    """A launch config beside no build output (a temporary file): the configure stage's plus Ray."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    handle = tempfile.NamedTemporaryFile("w", suffix=".axolotl-ray.yaml", delete=False, encoding="utf-8")
    with handle:
        yaml.safe_dump(with_ray(config, resources), handle, sort_keys=False)
    return Path(handle.name)
