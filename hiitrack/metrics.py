"""What an operator watches: the server's Prometheus collectors.

One process-wide `METRICS` holds the counters and histograms that the code
paths feed (requests by route template and status, their latency, events
recorded, group-commit sizes and latencies); `CacheCollector` reads the
hit and miss counts of an application's bounded caches when scraped.  They
are served in the Prometheus text format by hiitrack.web.metrics, behind
the operator's Basic credentials (``--metrics-auth-file``).  Tests:
tests/test_metrics.py.
"""

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["METRICS", "CacheCollector", "CacheStats", "Metrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
CELL_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)
METHODS = {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"}
"""Methods that get a label of their own; anything else is "other", so the series stay bounded."""


class Metrics:
    """The collectors; not registered anywhere until a registry takes them."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.requests = Counter(
            "hiitrack_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=None,
        )
        self.latency = Histogram(
            "hiitrack_http_request_seconds",
            "Time from the request's arrival at its resource to its answer, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.events = Counter(
            "hiitrack_events_recorded", "Events recorded (retried duplicates excluded).", registry=None
        )
        self.history_refused = Counter(
            "hiitrack_history_refused_hits",
            "Hits refused because their visitor's history holds the visitor-hits cap.",
            registry=None,
        )
        self.commit_batches = Histogram(
            "hiitrack_store_commit_batches",
            "Requests' write batches merged into one store commit (group commit).",
            buckets=SIZE_BUCKETS,
            registry=None,
        )
        self.commit_cells = Histogram(
            "hiitrack_store_commit_cells",
            "Records and distinct counter cells written by one store commit.",
            buckets=CELL_BUCKETS,
            registry=None,
        )
        self.commit_seconds = Histogram(
            "hiitrack_store_commit_seconds",
            "Duration of one store commit, from its start to its durability.",
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.commit_failures = Counter(
            "hiitrack_store_commit_failures", "Store commits that failed (their requests got 503).", registry=None
        )
        self.fold_seconds = Histogram(
            "hiitrack_store_fold_seconds",
            "Duration of one fold of journaled increments into the counter cells.",
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.fold_cells = Histogram(
            "hiitrack_store_fold_cells",
            "Counter cells one fold set.",
            buckets=CELL_BUCKETS,
            registry=None,
        )
        self.fold_failures = Counter(
            "hiitrack_store_fold_failures",
            "Folds that failed and are tried again at the next tick.",
            registry=None,
        )

    def observe(self, route: str, method: bytes, status: int, seconds: float) -> None:
        """Count one answered request of a route template, and its latency."""
        # The labelled children, found once: labels() takes a lock and checks
        # its arguments each time.  Routes, method labels and statuses are few.
        label = method.decode("ascii") if method in METHODS else "other"
        key = (route, label, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(route, label, str(status)),
                self.latency.labels(route),
            )
        requests, latency = children
        requests.inc()
        latency.observe(seconds)

    def collectors(self) -> list[Counter | Histogram]:
        return [
            self.requests,
            self.latency,
            self.events,
            self.history_refused,
            self.commit_batches,
            self.commit_cells,
            self.commit_seconds,
            self.commit_failures,
            self.fold_seconds,
            self.fold_cells,
            self.fold_failures,
        ]

    def registry(self, *extra: Collector) -> CollectorRegistry:
        """A registry of these collectors and `extra` ones (e.g. a CacheCollector)."""
        registry = CollectorRegistry(auto_describe=True)
        for collector in [*self.collectors(), *extra]:
            registry.register(collector)
        return registry


METRICS = Metrics()


class CacheStats(Protocol):
    """What the collector reads of a cache (hiitrack.caching.LRU has it)."""

    hits: int
    misses: int
    size: int

    def __len__(self) -> int: ...


class CacheCollector:
    """Hits, misses, size and hit ratio of an application's caches, read when scraped.

    `caches` gives each cache by name.
    """

    def __init__(self, caches: Callable[[], Mapping[str, CacheStats]]) -> None:
        self._caches = caches

    def collect(self) -> Iterator[Metric]:
        lookups = CounterMetricFamily(
            "hiitrack_cache_lookups", "Cache lookups by cache and result (hit or miss).", labels=["cache", "result"]
        )
        ratio = GaugeMetricFamily(
            "hiitrack_cache_hit_ratio", "Share of lookups that hit since start, by cache.", labels=["cache"]
        )
        entries = GaugeMetricFamily("hiitrack_cache_entries", "Entries held, by cache.", labels=["cache"])
        limit = GaugeMetricFamily("hiitrack_cache_limit", "Most entries a cache holds, by cache.", labels=["cache"])
        for name, cache in sorted(self._caches().items()):
            hits, misses = cache.hits, cache.misses
            lookups.add_metric([name, "hit"], hits)
            lookups.add_metric([name, "miss"], misses)
            ratio.add_metric([name], hits / (hits + misses) if hits + misses else 0.0)
            entries.add_metric([name], len(cache))
            limit.add_metric([name], cache.size)
        yield from (lookups, ratio, entries, limit)
