"""Prometheus metrics (prometheus-client), one registry per app so that several apps in
one process (the tests) never share counters.

Request-side metrics are observed as requests pass; the log's own figures (tree size,
witness cosignature ages, endorsement backlogs) are read at scrape time through
ledger.health, so a scrape always shows the log as it is."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from ledger import health
from ledger.app import Ledger
from schemas.errors import AllianceError

log = logging.getLogger("alliance.api")
# Append latency: a group commit takes a few ms; a queue behind a slow disk, seconds.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 5, 10, 50, 100, 250, 500, 1000)
COMMIT_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 1000, 4096)


class LogCollector(Collector):
    """The log's figures, read when scraped. A figure that cannot be read is left out
    of the scrape (and logged) rather than failing the whole scrape."""

    def __init__(self, ledger: Ledger, clock: Callable[[], datetime]) -> None:
        self.ledger = ledger
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from self._collect()
        except (AllianceError, SQLAlchemyError) as exc:
            log.warning("metrics: the log could not be read: %s", exc)

    def _collect(self) -> Iterator[GaugeMetricFamily]:
        size = GaugeMetricFamily("alliance_tree_size", "Entries in the latest verified checkpoint")
        size.add_metric([], self.ledger.signed_checkpoint().size)
        yield size
        now_s = self.clock().timestamp()
        ages = GaugeMetricFamily(
            "alliance_witness_cosignature_age_seconds",
            "Seconds since each region's witness last cosigned a checkpoint (absent: never)",
            labels=["region"],
        )
        for region, cosigned_s in health.last_cosignatures(self.ledger).items():
            if cosigned_s is not None:
                ages.add_metric([region], max(0.0, now_s - cosigned_s))
        yield ages
        backlog = GaugeMetricFamily(
            "alliance_endorsement_backlog",
            "Pending entries each region has still to endorse or reject",
            labels=["region"],
        )
        for region, count in health.endorsement_backlog(self.ledger).items():
            backlog.add_metric([region], count)
        yield backlog


class Metrics:
    def __init__(self, ledger: Ledger, clock: Callable[[], datetime]) -> None:
        self.registry = CollectorRegistry()
        self.append_seconds = Histogram(
            "alliance_append_seconds",
            "Time from a write request's arrival at the writer until its entries are durable",
            ["route"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.batch_entries = Histogram(
            "alliance_batch_request_entries",
            "Documents per POST /v1/entries:batch request",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.commit_entries = Histogram(
            "alliance_group_commit_entries",
            "Entries per writer transaction (one group commit of concurrent requests)",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "alliance_queue_depth",
            "Entries handed to the writer and not yet answered",
            registry=self.registry,
        )
        self.problems = Counter(
            "alliance_problems",
            "Problem documents answered, by type",
            ["type"],
            registry=self.registry,
        )
        self.refused_reads = Counter(
            "alliance_refused_reads", "Reads refused (403)", registry=self.registry
        )
        self.registry.register(LogCollector(ledger, clock))

    def timer(self) -> float:
        return time.perf_counter()

    def observe_append(self, route: str, started: float) -> None:
        self.append_seconds.labels(route).observe(time.perf_counter() - started)

    def render(self) -> bytes:
        return generate_latest(self.registry)
