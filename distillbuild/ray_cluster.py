"""A Ray cluster for a stage's length (`execution.engine: ray`).

`auto` joins the cluster `ray start --head` started on this machine (or the one RAY_ADDRESS
names), `ray://HOST:10001` a remote one through Ray Client (this package is shipped to it as a
runtime_env module), `local` starts a cluster in this process and stops it with the stage.
Ray's usage statistics are off: nothing phones home.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from distillbuild.errors import StageError

RAY_EXTRA = "pip install 'distillbuild[ray]'"


@contextmanager
def ray_cluster(address: str) -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise StageError(f"execution.engine: ray needs Ray in this environment: {RAY_EXTRA}") from None
    if ray.is_initialized():  # a caller (a test, a notebook) holds one already
        yield
        return
    options = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    try:
        if address == "local":  # a new cluster, even when another runs on this machine
            ray.init(address="local", **options)
        elif address.startswith("ray://"):
            package = str(Path(__file__).resolve().parent)
            ray.init(address=address, runtime_env={"py_modules": [package]}, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError) as exc:
        hint = "start one with `ray start --head`, or use address: local" if address == "auto" else "is it running?"
        raise StageError(f"cannot reach the Ray cluster at execution.address {address!r} ({hint}): {exc}") from None
    try:
        yield
    finally:
        ray.shutdown()


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))
