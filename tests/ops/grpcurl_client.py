"""Run grpcurl command lines from the README: through grpcio-reflection's client, or the real binary.

`ReflectionGrpcurl` does what grpcurl does for the flags the guide uses (-plaintext, -unix, -d,
-H, -cacert): it learns the schema over the server reflection protocol
(ProtoReflectionDescriptorDatabase), builds request messages from the -d JSON with
google.protobuf.json_format and calls the method through generic gRPC calls. `BinaryGrpcurl`
runs the real grpcurl when one is installed. Both return a `Result` of JSON documents and text.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import threading
import time
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

__all__ = ["BinaryGrpcurl", "Command", "ReflectionGrpcurl", "Result", "readme_grpcurl_commands"]


@dataclass
class Command:
    """One grpcurl command as parsed from the README (argv after variable substitution)."""

    line: str
    argv: list[str]
    plaintext: bool = False
    unix: bool = False
    data: str | None = None
    headers: list[str] = field(default_factory=list)
    cacert: str | None = None
    address: str = ""
    verb: str = ""  # list | describe | a method "pkg.Service/Method"
    symbol: str | None = None

    @property
    def method(self) -> str | None:
        return self.verb if "/" in self.verb else None


@dataclass
class Result:
    """What a grpcurl run printed: parsed JSON documents (responses) and the raw text."""

    docs: list[dict[str, Any]]
    text: str


_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def readme_grpcurl_commands(readme: str) -> list[str]:
    """Every grpcurl command line inside the README's ```sh blocks (continuation lines joined)."""
    commands: list[str] = []
    in_block = False
    pending = ""
    for line in readme.splitlines():
        if line.startswith("```"):
            in_block = line.strip() in ("```sh", "```bash", "```shell") if not in_block else False
            continue
        if not in_block:
            continue
        if pending:
            pending += " " + line.strip().rstrip("\\").strip()
            if not line.rstrip().endswith("\\"):
                commands.append(pending)
                pending = ""
            continue
        if line.startswith("grpcurl "):
            if line.rstrip().endswith("\\"):
                pending = line.rstrip().rstrip("\\").strip()
            else:
                commands.append(line.strip())
    return commands


def parse_command(line: str, variables: dict[str, str]) -> Command:
    """Substitute $VARS as the shell would (values hold no quotes or spaces) and parse the flags."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"the README command uses ${name}, which the test does not set: {line}")
        return variables[name]

    argv = shlex.split(_VAR.sub(sub, line))
    assert argv[0] == "grpcurl"
    cmd = Command(line=line, argv=argv)
    rest = argv[1:]
    positional: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "-plaintext":
            cmd.plaintext = True
        elif arg == "-unix":
            cmd.unix = True
        elif arg in ("-d", "-H", "-cacert"):
            value = rest[i + 1]
            i += 1
            if arg == "-d":
                cmd.data = value
            elif arg == "-H":
                cmd.headers.append(value)
            else:
                cmd.cacert = value
        elif arg.startswith("-"):
            raise ValueError(f"the README uses a grpcurl flag the test does not know: {arg} in {line}")
        else:
            positional.append(arg)
        i += 1
    if len(positional) < 2:
        raise ValueError(f"expected ADDRESS and a verb or method: {line}")
    cmd.address, cmd.verb = positional[0], positional[1]
    cmd.symbol = positional[2] if len(positional) > 2 else None
    return cmd


class _Headers(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds -H headers to every call, reflection included (as grpcurl's -H does)."""

    _Details = namedtuple("_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"))

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers

    def _details(self, d: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(d.metadata or []) + self.headers
        return self._Details(
            d.method,
            d.timeout,
            metadata,
            d.credentials,
            getattr(d, "wait_for_ready", None),
            getattr(d, "compression", None),
        )

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


class ReflectionGrpcurl:
    """grpcurl's behaviour for the guide's commands, over grpcio-reflection's client."""

    name = "reflection-client"

    def run(
        self, cmd: Command, *, until: Callable[[list[dict[str, Any]]], bool] | None = None, timeout: float = 60.0
    ) -> Result:
        """Run `cmd`; a server stream is read until it ends, or until `until(docs)` holds (then cancelled)."""
        headers = []
        for h in cmd.headers:
            key, _, value = h.partition(":")
            headers.append((key.strip().lower(), value.strip()))
        if cmd.unix:
            assert cmd.plaintext, "-unix without -plaintext would try TLS over the socket"
            base = grpc.insecure_channel(f"unix:{cmd.address}")
        elif cmd.plaintext:
            base = grpc.insecure_channel(cmd.address)
        else:
            roots = Path(cmd.cacert).read_bytes() if cmd.cacert else None
            base = grpc.secure_channel(cmd.address, grpc.ssl_channel_credentials(root_certificates=roots))
        try:
            channel = grpc.intercept_channel(base, _Headers(headers))
            db = ProtoReflectionDescriptorDatabase(channel)
            pool = descriptor_pool.DescriptorPool(db)
            if cmd.verb == "list":
                names = (
                    db.get_services()
                    if cmd.symbol is None
                    else [m.full_name for m in pool.FindServiceByName(cmd.symbol).methods]
                )
                return Result([], "\n".join(names) + "\n")
            if cmd.verb == "describe":
                return Result([], self._describe(pool, cmd.symbol))
            return self._invoke(channel, pool, cmd, until, timeout)
        finally:
            base.close()

    @staticmethod
    def _describe(pool: descriptor_pool.DescriptorPool, symbol: str | None) -> str:
        assert symbol, "describe without a symbol"
        try:
            svc = pool.FindServiceByName(symbol)
        except KeyError:
            svc = None
        if svc is not None:
            lines = [f"{svc.full_name} is a service:", f"service {svc.name} {{"]
            for m in svc.methods:
                stream = "stream " if m.server_streaming else ""
                lines.append(
                    f"  rpc {m.name} ( .{m.input_type.full_name} ) returns ( {stream}.{m.output_type.full_name} );"
                )
            return "\n".join(lines + ["}"]) + "\n"
        msg = pool.FindMessageTypeByName(symbol)
        lines = [f"{msg.full_name} is a message:", f"message {msg.name} {{"]
        for f in msg.fields:
            lines.append(f"  {f.name} = {f.number};")
        return "\n".join(lines + ["}"]) + "\n"

    @staticmethod
    def _invoke(
        channel: grpc.Channel,
        pool: descriptor_pool.DescriptorPool,
        cmd: Command,
        until: Callable[[list[dict[str, Any]]], bool] | None,
        timeout: float,
    ) -> Result:
        service_name, _, method_name = cmd.verb.rpartition("/")
        method = pool.FindServiceByName(service_name).methods_by_name[method_name]
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        request = json_format.Parse(cmd.data or "{}", request_cls())
        path = f"/{service_name}/{method_name}"

        def to_doc(m: Any) -> dict:
            return json_format.MessageToDict(m, preserving_proto_field_name=True)

        if method.client_streaming:
            raise NotImplementedError("client streaming is not in the guide")
        if not method.server_streaming:
            call = channel.unary_unary(
                path, request_serializer=request_cls.SerializeToString, response_deserializer=response_cls.FromString
            )
            doc = to_doc(call(request, timeout=timeout))
            return Result([doc], json.dumps(doc, indent=2))
        call = channel.unary_stream(
            path, request_serializer=request_cls.SerializeToString, response_deserializer=response_cls.FromString
        )(request, timeout=timeout)
        docs: list[dict[str, Any]] = []
        try:
            for message in call:
                docs.append(to_doc(message))
                if until is not None and until(docs):
                    break
        finally:
            call.cancel()
        return Result(docs, "\n".join(json.dumps(d, indent=2) for d in docs))


def _json_docs(text: str) -> list[dict[str, Any]]:
    """The JSON objects grpcurl printed one after another (pretty-printed)."""
    decoder = json.JSONDecoder()
    docs, i = [], 0
    while True:
        start = text.find("{", i)
        if start < 0:
            return docs
        try:
            doc, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            return docs  # a document still being written
        docs.append(doc)
        i = end


class BinaryGrpcurl:
    """The real grpcurl binary, run with the command's argv (no shell)."""

    name = "grpcurl-binary"

    def __init__(self, path: str) -> None:
        self.path = path

    def run(
        self, cmd: Command, *, until: Callable[[list[dict[str, Any]]], bool] | None = None, timeout: float = 60.0
    ) -> Result:
        argv = [self.path, *cmd.argv[1:]]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        chunks: list[bytes] = []

        def pump() -> None:
            assert proc.stdout is not None
            chunks.extend(iter(lambda: proc.stdout.read1(65536), b""))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if until is not None and until(_json_docs(b"".join(chunks).decode(errors="replace"))):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"grpcurl still running after {timeout}s: {cmd.line}")
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=10)
            reader.join(timeout=10)
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            if proc.stdout:
                proc.stdout.close()
            if proc.stderr:
                proc.stderr.close()
        text = b"".join(chunks).decode(errors="replace")
        if until is None and proc.returncode != 0:
            raise AssertionError(f"grpcurl exited {proc.returncode}: {stderr}\ncommand: {cmd.line}")
        return Result(_json_docs(text), text)
