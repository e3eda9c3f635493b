"""The daemon's gRPC server: listeners, auth, health, reflection, metrics, graceful shutdown.

`DaemonServer(config)` builds everything inside the running event loop:
the supervisor, the DaemonService, the standard health and reflection
services, a unix-socket listener (always), a TLS TCP listener (optional) and
the dial-out tunnel (optional), whose calls reach the same handlers in-process.

Size: start and shutdown run in one order that matters (store, supervisor,
listeners, health, dial-out; then the reverse, draining in-flight calls), so
the lifecycle stays in one module; the listeners and auth are short helpers here.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import stat
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from berth.daemon.v1 import daemon_pb2, daemon_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from daemon import metrics, sdnotify
from daemon.auth import AuthInterceptor, is_unix_peer, wrap_handler
from daemon.config import DaemonConfig, DialOutConfig
from daemon.errors import DaemonError
from daemon.local_calls import LocalCalls
from daemon.logs import request_id_var
from daemon.service import DaemonService
from daemon.supervisor import Supervisor
from daemon.tunnel import TunnelDialer, TunnelTarget

__all__ = ["MAX_MESSAGE_BYTES", "SERVICE_NAME", "DaemonServer", "StartupError"]

log = logging.getLogger(__name__)

SERVICE_NAME = daemon_pb2.DESCRIPTOR.services_by_name["DaemonService"].full_name
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_HEALTH_PREFIX = f"/{health.SERVICE_NAME}/"
_SHUTDOWN_CANCEL = "berth-daemon-shutdown"
_UNKNOWN_METHOD = "unknown"


class StartupError(RuntimeError):
    """The server could not start (socket busy, port in use, bad TLS files, …)."""


class _ReflectionServicer(reflection.aio.ReflectionServicer):  # type: ignore[name-defined]
    """Reflection that also resolves method symbols ("pkg.Service.Method"), as `grpcurl describe` asks.

    The upb descriptor pool only knows top-level symbols; a method resolves to its service's file.
    """

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        reply = super()._file_containing_symbol(request, fully_qualified_name)
        if reply.HasField("error_response"):
            service_name, _, method = fully_qualified_name.rpartition(".")
            try:
                service = self._pool.FindServiceByName(service_name)
            except KeyError:
                return reply
            if method in service.methods_by_name:
                return super()._file_containing_symbol(request, service_name)
        return reply


class _CallObserver(grpc.aio.ServerInterceptor):
    """Outermost interceptor: request id, one log line and metrics per call; ends streams at shutdown."""

    def __init__(self) -> None:
        self._streams: set[asyncio.Task[Any]] = set()
        self._ended: set[asyncio.Task[Any]] = set()

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            # grpc answers UNIMPLEMENTED itself; count it here since no behavior runs. The label
            # is fixed: callers choose method names, and labels must not grow without bound.
            metrics.RPC_TOTAL.labels(_UNKNOWN_METHOD, grpc.StatusCode.UNIMPLEMENTED.name).inc()
            metrics.RPC_ERRORS.labels(grpc.StatusCode.UNIMPLEMENTED.name).inc()
            log.info("unknown method", extra={"method": details.method, "code": "UNIMPLEMENTED"})
            return None
        method = details.method
        streaming = bool(handler.response_streaming)
        return wrap_handler(handler, lambda context: _ObservedCall(self, context, method, streaming))

    def end_streams(self) -> int:
        """Cancel long-lived response streams (not health); they answer UNAVAILABLE. Returns how many."""
        count = 0
        for task in list(self._streams):
            if not task.done():
                self._ended.add(task)
                task.cancel(_SHUTDOWN_CANCEL)
                count += 1
        return count


class _ObservedCall:
    __slots__ = ("_context", "_method", "_observer", "_peer", "_rid", "_rid_token", "_start", "_streaming", "_task")

    def __init__(self, observer: _CallObserver, context: grpc.aio.ServicerContext, method: str, streaming: bool):
        self._observer = observer
        self._context = context
        self._method = method
        self._streaming = streaming
        self._task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> None:
        self._start = time.monotonic()
        metadata = self._context.invocation_metadata() or ()
        rid = next((v for k, v in metadata if k == "x-request-id" and isinstance(v, str) and v), None)
        self._rid = rid[:128] if rid else uuid.uuid4().hex
        self._rid_token = request_id_var.set(self._rid)
        self._peer = _peer_kind(self._context.peer())
        if self._streaming and not self._method.startswith(_HEALTH_PREFIX):
            self._task = asyncio.current_task()
            if self._task is not None:
                self._observer._streams.add(self._task)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task = self._task
        ended_by_shutdown = False
        if task is not None:
            self._observer._streams.discard(task)
            if task in self._observer._ended:
                self._observer._ended.discard(task)
                ended_by_shutdown = isinstance(exc, asyncio.CancelledError)
        try:
            code, abort_with = self._outcome(exc, ended_by_shutdown)
            if ended_by_shutdown and task is not None:
                task.uncancel()
            self._record(code, exc)
        finally:
            try:
                request_id_var.reset(self._rid_token)
            except ValueError:  # a generator closed from another context (e.g. by GC)
                pass
        if abort_with is not None:
            await self._context.abort(abort_with[0], abort_with[1])

    def _outcome(
        self, exc: BaseException | None, ended_by_shutdown: bool
    ) -> tuple[grpc.StatusCode, tuple[grpc.StatusCode, str] | None]:
        set_code = self._context.code()
        if exc is None:
            return (set_code or grpc.StatusCode.OK), None
        if ended_by_shutdown:
            return grpc.StatusCode.UNAVAILABLE, (grpc.StatusCode.UNAVAILABLE, "daemon is shutting down")
        if isinstance(exc, asyncio.CancelledError):
            return grpc.StatusCode.CANCELLED, None
        if isinstance(exc, grpc.aio.AbortError):
            return (set_code or grpc.StatusCode.UNKNOWN), None
        if isinstance(exc, DaemonError):
            # Safety net: the service should map these itself.
            return exc.code, (exc.code, str(exc))
        if set_code not in (None, grpc.StatusCode.OK):
            return set_code, None
        return grpc.StatusCode.UNKNOWN, None

    def _record(self, code: grpc.StatusCode, exc: BaseException | None) -> None:
        elapsed = time.monotonic() - self._start
        metrics.RPC_TOTAL.labels(self._method, code.name).inc()
        if code is not grpc.StatusCode.OK:
            metrics.RPC_ERRORS.labels(code.name).inc()
        if not self._streaming:
            metrics.RPC_SECONDS.labels(self._method).observe(elapsed)
        extra = {
            "method": self._method,
            "peer": self._peer,
            "code": code.name,
            "duration_ms": round(elapsed * 1000, 2),
            "request_id": self._rid,
        }
        unexpected = exc is not None and code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
        if unexpected and not isinstance(exc, (grpc.aio.AbortError, DaemonError, NotImplementedError)):
            log.error("rpc failed", extra=extra, exc_info=exc)
        elif self._method.startswith(_HEALTH_PREFIX):
            log.debug("rpc", extra=extra)
        else:
            log.info("rpc", extra=extra)


def _peer_kind(peer: str) -> str:
    if is_unix_peer(peer):
        return "unix"
    return "tunnel" if peer.startswith("tunnel:") else "tcp"


def _prepare_unix_socket(path: Path) -> None:
    """Create the parent directory; remove a stale socket, refuse a live one or a non-socket."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise StartupError(f"listen.unix_socket: {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise StartupError(f"listen.unix_socket: cannot probe {path}: {exc}") from exc
        log.info("removing stale socket %s", path)
        path.unlink(missing_ok=True)
    else:
        raise StartupError(f"listen.unix_socket: another process is listening on {path}")
    finally:
        probe.close()


class DaemonServer:
    """The daemon's gRPC server and everything it owns; create it inside the running loop."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        supervisor: Supervisor | None = None,
        servicer: daemon_pb2_grpc.DaemonServiceServicer | None = None,
    ) -> None:
        self.config = config
        self.supervisor = supervisor
        self._servicer = servicer
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self._observer = _CallObserver()
        self._server: grpc.aio.Server | None = None
        self._server_started = False  # the grpc server ran (so stop() releases its ports)
        self._dialer: TunnelDialer | None = None
        self._metrics: metrics.MetricsEndpoint | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._socket_path: Path | None = None
        self._tcp_port: int | None = None
        self._started = False
        self._stopping = False
        self._stopped: asyncio.Event | None = None

    # -- addresses -------------------------------------------------------

    @property
    def socket_path(self) -> Path | None:
        """The unix socket the server listens on (None before start / after stop)."""
        return self._socket_path

    @property
    def tcp_port(self) -> int | None:
        """The TCP port actually bound (resolves "host:0"), or None without TCP."""
        return self._tcp_port

    @property
    def metrics_port(self) -> int | None:
        return self._metrics.port if self._metrics else None

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        """Start the supervisor, bind the listeners, mark SERVING and tell systemd READY=1."""
        if self._started:
            raise RuntimeError("DaemonServer.start() called twice")
        self._started = True
        self._stopped = asyncio.Event()
        config = self.config
        sdnotify.notify("STATUS=starting")
        if self.supervisor is None:
            self.supervisor = Supervisor(config)
        try:
            await self.supervisor.start()
        except BaseException:
            await self.supervisor.shutdown()  # release whatever it opened before failing
            self._stopping = True
            self._stopped.set()
            raise
        try:
            await self._start_listening()
        except BaseException:
            await self._teardown(grace=0)
            raise
        sessions_by_status = getattr(self.supervisor, "sessions_by_status", None)
        if callable(sessions_by_status):
            metrics.set_sessions_source(sessions_by_status)
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self._dialer is not None:
            self._dialer.start()
        listening = [f"unix:{self._socket_path}"] + ([f"tcp:{self._tcp_port}"] if self._tcp_port else [])
        sdnotify.notify("READY=1\nSTATUS=listening on " + ", ".join(listening))
        interval = sdnotify.watchdog_interval()
        if interval:
            self._watchdog = asyncio.create_task(self._watchdog_loop(interval), name="berth-sd-watchdog")
        log.info(
            "daemon listening",
            extra={"socket": str(self._socket_path), "tcp_port": self._tcp_port, "metrics_port": self.metrics_port},
        )

    async def _start_listening(self) -> None:
        config, listen = self.config, self.config.listen
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        server = grpc.aio.server(
            interceptors=[self._observer, AuthInterceptor(listen.token)],
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                # Without this two daemons could share one TCP port silently.
                ("grpc.so_reuseport", 0),
            ],
        )
        self._server = server
        servicer = self._servicer or DaemonService(self.supervisor)  # type: ignore[arg-type]
        registrations = [
            lambda target: daemon_pb2_grpc.add_DaemonServiceServicer_to_server(servicer, target),
            lambda target: health_pb2_grpc.add_HealthServicer_to_server(self.health, target),
        ]
        for register in registrations:
            register(server)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            _ReflectionServicer((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)), server
        )

        path = config.socket_path.absolute()
        if len(os.fsencode(path)) > 107:
            raise StartupError(f"listen.unix_socket: path is longer than 107 bytes: {path}")
        _prepare_unix_socket(path)
        try:
            server.add_insecure_port(f"unix:{path}")
        except RuntimeError as exc:
            raise StartupError(f"listen.unix_socket: cannot bind {path}: {exc}") from exc
        self._socket_path = path

        if listen.tcp:
            if not (listen.tls_cert and listen.tls_key):
                raise StartupError("listen.tcp: plaintext TCP is not allowed; set listen.tls_cert and listen.tls_key")
            try:
                creds = grpc.ssl_server_credentials([(listen.tls_key.read_bytes(), listen.tls_cert.read_bytes())])
            except OSError as exc:
                raise StartupError(f"listen.tls_cert/tls_key: {exc}") from exc
            try:
                port = server.add_secure_port(listen.tcp, creds)
            except RuntimeError as exc:
                raise StartupError(f"listen.tcp: cannot bind {listen.tcp}: {exc}") from exc
            if not port:
                raise StartupError(f"listen.tcp: cannot bind {listen.tcp}")
            self._tcp_port = port

        await server.start()
        self._server_started = True
        os.chmod(path, listen.unix_socket_mode)
        if listen.metrics:
            endpoint = metrics.MetricsEndpoint(listen.metrics)
            try:
                endpoint.start()
            except OSError as exc:
                raise StartupError(f"listen.metrics: cannot bind {listen.metrics}: {exc}") from exc
            self._metrics = endpoint
        if config.dial_out is not None:
            # Tunneled calls are authenticated when the tunnel opens, so only the observer wraps them.
            calls = LocalCalls(registrations, interceptors=[self._observer])
            self._dialer = TunnelDialer(_tunnel_target(config.dial_out), calls)

    @property
    def dialer(self) -> TunnelDialer | None:
        """The dial-out tunnel's end, when `[dial_out]` is configured."""
        return self._dialer

    async def _watchdog_loop(self, interval: float) -> None:
        while True:
            sdnotify.notify("WATCHDOG=1")
            await asyncio.sleep(interval / 2)

    async def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown (idempotent): NOT_SERVING, stop accepting, drain, supervisor.shutdown()."""
        if not self._started or self._stopped is None:
            return
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        grace = self.config.stop_grace_seconds if grace is None else grace
        log.info("daemon shutting down", extra={"grace_seconds": grace})
        sdnotify.notify("STOPPING=1\nSTATUS=shutting down")
        await self.health.enter_graceful_shutdown()
        await self._teardown(grace)

    async def _teardown(self, grace: float) -> None:
        try:
            if self._dialer is not None:
                await self._dialer.close()
                self._dialer = None
            if self._server is not None:
                # Followers of live events would hold the drain for the whole grace period;
                # they get UNAVAILABLE now and resume from their last seq on the next daemon.
                self._observer.end_streams()
                if not self._server_started:
                    # gRPC keeps a port bound by add_*_port open until its server has run: start it so
                    # that stop() releases it (health says NOT_SERVING meanwhile).
                    await self._server.start()
                await self._server.stop(grace)
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
                try:
                    await self._watchdog
                except asyncio.CancelledError:
                    pass
                self._watchdog = None
            if self._metrics is not None:
                self._metrics.stop()
                self._metrics = None
            metrics.set_sessions_source(None)
            try:
                if self.supervisor is not None:
                    await self.supervisor.shutdown()
            finally:
                if self._socket_path is not None:
                    self._socket_path.unlink(missing_ok=True)
                    self._socket_path = None
                self._server = None
                self._server_started = False
                self._stopping = True
                assert self._stopped is not None
                self._stopped.set()
                log.info("daemon stopped")

    async def wait(self) -> None:
        """Return once the server has stopped."""
        if self._stopped is None:
            raise RuntimeError("DaemonServer.wait() before start()")
        await self._stopped.wait()

    async def __aenter__(self) -> DaemonServer:  # noqa: PYI034 - no Self needed, not subclassed
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _tunnel_target(dial_out: DialOutConfig) -> TunnelTarget:
    try:
        ca = dial_out.ca.read_bytes() if dial_out.ca is not None else None
    except OSError as exc:
        raise StartupError(f"dial_out.ca_file: cannot read {dial_out.ca}: {exc.strerror}") from None
    return TunnelTarget(dial_out.address, dial_out.credential, ca=ca, plaintext=dial_out.plaintext)
