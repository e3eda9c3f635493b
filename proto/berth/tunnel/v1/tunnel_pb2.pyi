from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ControlFrame(_message.Message):
    __slots__ = ("call_id", "start", "credit", "cancel")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    CREDIT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    start: CallStart
    credit: int
    cancel: bool
    def __init__(self, call_id: _Optional[int] = ..., start: _Optional[_Union[CallStart, _Mapping]] = ..., credit: _Optional[int] = ..., cancel: _Optional[bool] = ...) -> None: ...

class CallStart(_message.Message):
    __slots__ = ("method", "server_streaming", "request", "timeout_seconds", "window")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SERVER_STREAMING_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    method: str
    server_streaming: bool
    request: bytes
    timeout_seconds: float
    window: int
    def __init__(self, method: _Optional[str] = ..., server_streaming: _Optional[bool] = ..., request: _Optional[bytes] = ..., timeout_seconds: _Optional[float] = ..., window: _Optional[int] = ...) -> None: ...

class DaemonFrame(_message.Message):
    __slots__ = ("call_id", "message", "status", "answer")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    message: bytes
    status: CallStatus
    answer: bytes
    def __init__(self, call_id: _Optional[int] = ..., message: _Optional[bytes] = ..., status: _Optional[_Union[CallStatus, _Mapping]] = ..., answer: _Optional[bytes] = ...) -> None: ...

class CallStatus(_message.Message):
    __slots__ = ("code", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: int
    details: str
    def __init__(self, code: _Optional[int] = ..., details: _Optional[str] = ...) -> None: ...
