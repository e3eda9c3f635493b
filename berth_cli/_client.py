"""The REST client of the CLI: one httpx.Client per run, errors as CliError, the SSE reader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError


class CliError(Exception):
    """A failure to report to the user (exit status 1), with the API's answer when there is one."""

    def __init__(self, message: str, body: Any = None, status: int | None = None) -> None:
        super().__init__(message)
        self.body = body
        self.status = status


@dataclass
class Client:
    """A thin synchronous REST client over one httpx.Client (opened on first use, ended by close());
    non-2xx answers raise CliError carrying the body."""

    url: str
    token: str | None
    timeout: float = 120.0
    where: str = ""  # where the URL came from, for errors
    _http: httpx.Client | None = field(default=None, init=False, repr=False)

    def http(self) -> httpx.Client:
        """The run's one connection pool."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=self.timeout)
        return self._http

    def close(self) -> None:
        """End the connection pool (idempotent)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def _from(self) -> str:
        return f" (from {self.where})" if self.where else ""

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """The answer to one request (a JSON `body`, or raw `content` of `content_type`); CliError unless 2xx."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        headers = self._headers() | ({"Content-Type": content_type} if content_type else {})
        try:
            if content is not None:
                resp = self.http().request(method, path, content=content, params=params, headers=headers)
            else:
                resp = self.http().request(method, path, json=body, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the control plane at {self.url}{self._from()}: {exc}") from exc
        if resp.status_code >= 400:
            data = _decoded(resp)
            raise CliError(
                f"{method} {path} → HTTP {resp.status_code}: {_describe_error(data)}", data, resp.status_code
            )
        return resp

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        """The decoded JSON answer to one request."""
        return _decoded(self.send(method, path, body=body, params=params, content=content, content_type=content_type))

    def stream_events(self, session_id: str, after_seq: int | None) -> Iterator[dict[str, Any]]:
        """Follow GET /api/sessions/{id}/events (SSE), yielding {id, event, data} records."""
        headers = self._headers() | {"Accept": "text/event-stream"}
        if after_seq is not None:
            headers["Last-Event-ID"] = str(after_seq)
        timeout = httpx.Timeout(self.timeout, read=None)
        try:
            with self.http().stream(
                "GET", f"/api/sessions/{session_id}/events", headers=headers, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    try:
                        data = resp.json()
                    except ValueError:
                        data = resp.text
                    raise CliError(
                        f"GET /api/sessions/{session_id}/events → HTTP {resp.status_code}: {_describe_error(data)}",
                        data,
                        resp.status_code,
                    )
                yield from sse_records(resp)
        except (httpx.HTTPError, SSEError) as exc:
            raise CliError(f"event stream from {self.url}{self._from()} ended: {exc}") from exc


def _decoded(resp: httpx.Response) -> Any:
    try:
        return resp.json() if resp.content else None
    except ValueError:
        return resp.text


def sse_records(resp: httpx.Response) -> Iterator[dict[str, Any]]:
    """The Server-Sent Events of a streaming response as {id, event, data} (data JSON-decoded when it
    is JSON); comments and events without data are skipped."""
    for sse in EventSource(resp).iter_sse():
        if not sse.data:
            continue
        try:
            data: Any = json.loads(sse.data)
        except ValueError:
            data = sse.data
        record: dict[str, Any] = {"event": sse.event or "message", "data": data}
        if sse.id:
            record["id"] = sse.id
        yield record


def _describe_error(data: Any) -> str:
    """FastAPI's error bodies as one readable line, naming the field for validation errors."""
    if isinstance(data, dict):
        detail = data.get("detail", data.get("error", data.get("payload", data)))
        if isinstance(detail, list):
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                    parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg", item)))
                else:
                    parts.append(str(item))
            return "; ".join(parts)
        if isinstance(detail, dict):
            return str(detail.get("error") or detail.get("message") or json.dumps(detail))
        return str(detail)
    return str(data)


# --- output -------------------------------------------------------------------------------------
