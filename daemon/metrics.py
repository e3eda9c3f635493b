"""Prometheus metrics of the daemon, in a registry of its own.

The service and supervisor import the metric objects (`LAUNCH_SECONDS`,
`EVENTS_STREAMED`, `RPC_TOTAL`) and update them; `MetricsEndpoint` serves
`REGISTRY` over HTTP on `listen.metrics`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "EVENTS_STREAMED",
    "LAUNCH_SECONDS",
    "REGISTRY",
    "RPC_ERRORS",
    "RPC_SECONDS",
    "RPC_TOTAL",
    "MetricsEndpoint",
    "parse_hostport",
    "set_sessions_source",
]

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

RPC_TOTAL = Counter(
    "berth_daemon_rpc", "gRPC calls handled, by method and status code.", ["method", "code"], registry=REGISTRY
)
RPC_ERRORS = Counter(
    "berth_daemon_rpc_errors", "gRPC calls that ended with a status other than OK.", ["code"], registry=REGISTRY
)
RPC_SECONDS = Histogram(
    "berth_daemon_rpc_seconds",
    "Time spent handling unary gRPC calls, by method.",
    ["method"],
    registry=REGISTRY,
)
LAUNCH_SECONDS = Histogram(
    "berth_daemon_launch_seconds",
    "LaunchSession latency: request received to acknowledgement.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    registry=REGISTRY,
)
EVENTS_STREAMED = Counter("berth_daemon_events_streamed", "Events sent to StreamEvents callers.", registry=REGISTRY)


class _SessionsCollector(Collector):
    """`berth_daemon_sessions{status}` read from the supervisor at scrape time."""

    def __init__(self) -> None:
        self.source: Callable[[], dict[str, int]] | None = None

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [GaugeMetricFamily("berth_daemon_sessions", "Sessions by status.", labels=["status"])]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("berth_daemon_sessions", "Sessions by status.", labels=["status"])
        source = self.source
        if source is not None:
            try:
                counts = source()
            except Exception:  # a failing scrape must not take the endpoint down
                log.exception("sessions_by_status() failed during a metrics scrape")
                counts = {}
            for status, count in sorted(counts.items()):
                family.add_metric([str(status)], float(count))
        yield family


_SESSIONS = _SessionsCollector()
REGISTRY.register(_SESSIONS)


def set_sessions_source(source: Callable[[], dict[str, int]] | None) -> None:
    """Use `source()` (e.g. `supervisor.sessions_by_status`) for the sessions gauge; None clears it."""
    _SESSIONS.source = source


def parse_hostport(value: str, *, field: str) -> tuple[str, int]:
    """Split "host:port" (IPv6 as "[::1]:port"); raise ValueError naming `field`."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{field}: expected host:port, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class MetricsEndpoint:
    """An HTTP server (in a thread) answering /metrics from `REGISTRY`."""

    def __init__(self, address: str) -> None:
        self.host, self._requested_port = parse_hostport(address, field="listen.metrics")
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int | None:
        """The port actually bound (useful with port 0)."""
        return self._server.server_port if self._server else None

    def start(self) -> None:
        self._server, self._thread = start_http_server(self._requested_port, addr=self.host, registry=REGISTRY)

    def stop(self) -> None:
        """Stop serving; idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
