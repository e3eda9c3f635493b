"""Prometheus metrics of one control-plane app (own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """The control plane's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sessions = Gauge("berth_cp_sessions", "Agent sessions by status", ["status"], registry=self.registry)
        self.launch_seconds = Histogram(
            "berth_cp_launch_seconds",
            "Launch request latency (daemon round trip included)",
            ["outcome"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
        )
        self.rpc_errors = Counter(
            "berth_cp_daemon_rpc_errors",
            "Daemon RPC errors by method and gRPC code",
            ["method", "code"],
            registry=self.registry,
        )
        self.events_ingested = Counter(
            "berth_cp_events_ingested", "Daemon events stored as messages", registry=self.registry
        )
        self.sse_clients = Gauge("berth_cp_sse_clients", "Connected SSE clients", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
