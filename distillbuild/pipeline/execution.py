"""Where a stage's heavy work runs: `execution.engine` local (None here) or a Ray cluster joined
for the stage's length. The `execution` section is read by stages but is no DVC param (see
contract.RUN_ONLY_KEYS): it changes where the work runs, never what it makes."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from distillbuild.curate.input_checks import OnRay
from distillbuild.spec import Spec

MAX_DEFAULT_WORKERS = 8


@contextmanager
def cluster_for(spec: Spec, stage: str) -> Iterator[OnRay | None]:
    """None on the local engine; else, inside a Ray cluster, the share `execution.<stage>` asks for."""
    execution = spec.execution
    if execution.engine != "ray":
        yield None
        return
    from distillbuild.ray_cluster import cluster_cpus, ray_cluster

    with ray_cluster(execution.address):
        resources = getattr(execution, stage)
        workers = resources.workers or min(MAX_DEFAULT_WORKERS, cluster_cpus())
        yield OnRay(workers=workers, num_cpus=resources.num_cpus or 1.0)
