"""The server's Prometheus metrics (prometheus-client, the library Prometheus itself publishes).

One registry per server, so two servers in one process (a test, a shadow) count apart. Under
several workers each process writes to PROMETHEUS_MULTIPROC_DIR and /metrics adds them up.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Telemetry:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "distill_requests",
            "Chat requests answered, by the model that answered and HTTP status.",
            ["model", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "distill_request_duration_seconds",
            "Time from a request's body read to its answer, by who answered.",
            ["answered_by"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.answers = Counter(
            "distill_answers",
            "Answers by source: student, teacher (routed), teacher_unusable (routed, the student's "
            "answer kept), student_unlabelled, candidate (canary).",
            ["source"],
            registry=r,
        )
        self.rejected = Counter(
            "distill_rejected",
            "Requests refused before the model: unauthorized, too_large, invalid, queue_full, draining.",
            ["reason"],
            registry=r,
        )
        self.teacher_errors = Counter(
            "distill_teacher_errors", "Routed requests the teacher did not answer.", registry=r
        )
        self.queue = Gauge(
            "distill_queue_depth", "Requests admitted and not yet answered.", registry=r, multiprocess_mode="livesum"
        )
        self.batch = Histogram(
            "distill_batch_size", "Rows per micro-batch the student ran.", buckets=BATCH_BUCKETS, registry=r
        )
        self.share_routed = Gauge(
            "distill_share_routed",
            "Share of this process's answers the route sent to the teacher.",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.shadow = Counter(
            "distill_shadow", "Shadowed requests, by whether the candidate agreed.", ["agreed"], registry=r
        )

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes; across workers when several share a directory."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)
