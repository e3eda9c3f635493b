from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionSettings(_message.Message):
    __slots__ = ("code", "voice")
    CODE_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    code: CodeSettings
    voice: VoiceSettings
    def __init__(self, code: _Optional[_Union[CodeSettings, _Mapping]] = ..., voice: _Optional[_Union[VoiceSettings, _Mapping]] = ...) -> None: ...

class CodeSettings(_message.Message):
    __slots__ = ("mode", "default_provider", "providers", "permissions", "allowed_tools", "approval_timeout_seconds", "max_turns", "max_cost_usd")
    MODE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_TOOLS_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    mode: str
    default_provider: str
    providers: ProviderSettings
    permissions: str
    allowed_tools: _containers.RepeatedScalarFieldContainer[str]
    approval_timeout_seconds: float
    max_turns: int
    max_cost_usd: float
    def __init__(self, mode: _Optional[str] = ..., default_provider: _Optional[str] = ..., providers: _Optional[_Union[ProviderSettings, _Mapping]] = ..., permissions: _Optional[str] = ..., allowed_tools: _Optional[_Iterable[str]] = ..., approval_timeout_seconds: _Optional[float] = ..., max_turns: _Optional[int] = ..., max_cost_usd: _Optional[float] = ...) -> None: ...

class ProviderSettings(_message.Message):
    __slots__ = ("claude_code", "codex")
    CLAUDE_CODE_FIELD_NUMBER: _ClassVar[int]
    CODEX_FIELD_NUMBER: _ClassVar[int]
    claude_code: ClaudeCodeSettings
    codex: CodexSettings
    def __init__(self, claude_code: _Optional[_Union[ClaudeCodeSettings, _Mapping]] = ..., codex: _Optional[_Union[CodexSettings, _Mapping]] = ...) -> None: ...

class ClaudeCodeSettings(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class CodexSettings(_message.Message):
    __slots__ = ("model", "thinking")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    model: str
    thinking: str
    def __init__(self, model: _Optional[str] = ..., thinking: _Optional[str] = ...) -> None: ...

class VoiceSettings(_message.Message):
    __slots__ = ("language",)
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    language: str
    def __init__(self, language: _Optional[str] = ...) -> None: ...

class LaunchSessionRequest(_message.Message):
    __slots__ = ("workspace_id", "repository", "worktree_name", "base_ref", "initial_prompt", "session_settings", "resume_session_id", "agent_session_id", "metadata", "owner")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_REF_FIELD_NUMBER: _ClassVar[int]
    INITIAL_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SESSION_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    RESUME_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    repository: str
    worktree_name: str
    base_ref: str
    initial_prompt: str
    session_settings: SessionSettings
    resume_session_id: str
    agent_session_id: str
    metadata: _struct_pb2.Struct
    owner: str
    def __init__(self, workspace_id: _Optional[str] = ..., repository: _Optional[str] = ..., worktree_name: _Optional[str] = ..., base_ref: _Optional[str] = ..., initial_prompt: _Optional[str] = ..., session_settings: _Optional[_Union[SessionSettings, _Mapping]] = ..., resume_session_id: _Optional[str] = ..., agent_session_id: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., owner: _Optional[str] = ...) -> None: ...

class LaunchSessionResponse(_message.Message):
    __slots__ = ("status", "payload", "session")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    status: str
    payload: _struct_pb2.Struct
    session: Session
    def __init__(self, status: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class SendMessageRequest(_message.Message):
    __slots__ = ("agent_session_id", "content", "message_id")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    content: str
    message_id: str
    def __init__(self, agent_session_id: _Optional[str] = ..., content: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class SendMessageResponse(_message.Message):
    __slots__ = ("message_id", "status", "timestamp")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    status: str
    timestamp: str
    def __init__(self, message_id: _Optional[str] = ..., status: _Optional[str] = ..., timestamp: _Optional[str] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("agent_session_id",)
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    def __init__(self, agent_session_id: _Optional[str] = ...) -> None: ...

class ResumeSessionRequest(_message.Message):
    __slots__ = ("agent_session_id", "prompt")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    prompt: str
    def __init__(self, agent_session_id: _Optional[str] = ..., prompt: _Optional[str] = ...) -> None: ...

class StopSessionRequest(_message.Message):
    __slots__ = ("agent_session_id", "grace_seconds")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    grace_seconds: float
    def __init__(self, agent_session_id: _Optional[str] = ..., grace_seconds: _Optional[float] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("status", "workspace_id")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    status: str
    workspace_id: str
    def __init__(self, status: _Optional[str] = ..., workspace_id: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("agent_session_id", "workspace_id", "provider", "model", "status", "provider_session_id", "repository", "worktree_path", "branch", "pid", "created_at", "updated_at", "last_error", "last_seq", "turn_running", "queued_messages", "metadata", "owner", "pending_approvals")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_PATH_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    TURN_RUNNING_FIELD_NUMBER: _ClassVar[int]
    QUEUED_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PENDING_APPROVALS_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    workspace_id: str
    provider: str
    model: str
    status: str
    provider_session_id: str
    repository: str
    worktree_path: str
    branch: str
    pid: int
    created_at: str
    updated_at: str
    last_error: str
    last_seq: int
    turn_running: bool
    queued_messages: int
    metadata: _struct_pb2.Struct
    owner: str
    pending_approvals: int
    def __init__(self, agent_session_id: _Optional[str] = ..., workspace_id: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., status: _Optional[str] = ..., provider_session_id: _Optional[str] = ..., repository: _Optional[str] = ..., worktree_path: _Optional[str] = ..., branch: _Optional[str] = ..., pid: _Optional[int] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., last_error: _Optional[str] = ..., last_seq: _Optional[int] = ..., turn_running: _Optional[bool] = ..., queued_messages: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., owner: _Optional[str] = ..., pending_approvals: _Optional[int] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("agent_session_id", "after_seq", "history_only")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    HISTORY_ONLY_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    after_seq: int
    history_only: bool
    def __init__(self, agent_session_id: _Optional[str] = ..., after_seq: _Optional[int] = ..., history_only: _Optional[bool] = ...) -> None: ...

class Content(_message.Message):
    __slots__ = ("type", "text", "name", "tool_use_id", "arguments", "output", "is_error", "success", "message")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOOL_USE_ID_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    type: str
    text: str
    name: str
    tool_use_id: str
    arguments: _struct_pb2.Struct
    output: _struct_pb2.Value
    is_error: bool
    success: bool
    message: str
    def __init__(self, type: _Optional[str] = ..., text: _Optional[str] = ..., name: _Optional[str] = ..., tool_use_id: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., is_error: _Optional[bool] = ..., success: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("agent_session_id", "seq", "role", "content", "created_at", "metadata", "status")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    seq: int
    role: str
    content: Content
    created_at: str
    metadata: _struct_pb2.Struct
    status: str
    def __init__(self, agent_session_id: _Optional[str] = ..., seq: _Optional[int] = ..., role: _Optional[str] = ..., content: _Optional[_Union[Content, _Mapping]] = ..., created_at: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., status: _Optional[str] = ...) -> None: ...

class TranscriptMessage(_message.Message):
    __slots__ = ("message_id", "role", "content", "created_at", "metadata")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    role: str
    content: Content
    created_at: str
    metadata: _struct_pb2.Struct
    def __init__(self, message_id: _Optional[str] = ..., role: _Optional[str] = ..., content: _Optional[_Union[Content, _Mapping]] = ..., created_at: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ImportTranscriptRequest(_message.Message):
    __slots__ = ("provider_session_id", "messages", "worktree_path", "repository", "worktree_name", "base_ref", "owner")
    PROVIDER_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_PATH_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_REF_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    provider_session_id: str
    messages: _containers.RepeatedCompositeFieldContainer[TranscriptMessage]
    worktree_path: str
    repository: str
    worktree_name: str
    base_ref: str
    owner: str
    def __init__(self, provider_session_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[TranscriptMessage, _Mapping]]] = ..., worktree_path: _Optional[str] = ..., repository: _Optional[str] = ..., worktree_name: _Optional[str] = ..., base_ref: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class ImportTranscriptResponse(_message.Message):
    __slots__ = ("path", "worktree_path", "branch", "message_count", "worktree_created")
    PATH_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_PATH_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    WORKTREE_CREATED_FIELD_NUMBER: _ClassVar[int]
    path: str
    worktree_path: str
    branch: str
    message_count: int
    worktree_created: bool
    def __init__(self, path: _Optional[str] = ..., worktree_path: _Optional[str] = ..., branch: _Optional[str] = ..., message_count: _Optional[int] = ..., worktree_created: _Optional[bool] = ...) -> None: ...

class RemoveWorktreeRequest(_message.Message):
    __slots__ = ("worktree_path", "force", "delete_branch", "agent_session_id", "owner", "check_only", "delete_branch_if_merged")
    WORKTREE_PATH_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    DELETE_BRANCH_FIELD_NUMBER: _ClassVar[int]
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CHECK_ONLY_FIELD_NUMBER: _ClassVar[int]
    DELETE_BRANCH_IF_MERGED_FIELD_NUMBER: _ClassVar[int]
    worktree_path: str
    force: bool
    delete_branch: bool
    agent_session_id: str
    owner: str
    check_only: bool
    delete_branch_if_merged: bool
    def __init__(self, worktree_path: _Optional[str] = ..., force: _Optional[bool] = ..., delete_branch: _Optional[bool] = ..., agent_session_id: _Optional[str] = ..., owner: _Optional[str] = ..., check_only: _Optional[bool] = ..., delete_branch_if_merged: _Optional[bool] = ...) -> None: ...

class ForgetSessionRequest(_message.Message):
    __slots__ = ("agent_session_id", "owner")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    owner: str
    def __init__(self, agent_session_id: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class ForgetSessionResponse(_message.Message):
    __slots__ = ("worktree_path",)
    WORKTREE_PATH_FIELD_NUMBER: _ClassVar[int]
    worktree_path: str
    def __init__(self, worktree_path: _Optional[str] = ...) -> None: ...

class ListWorktreesRequest(_message.Message):
    __slots__ = ("repository", "owner")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    repository: str
    owner: str
    def __init__(self, repository: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class Worktree(_message.Message):
    __slots__ = ("path", "branch", "agent_session_id", "session_status", "forgotten", "dirty")
    PATH_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_STATUS_FIELD_NUMBER: _ClassVar[int]
    FORGOTTEN_FIELD_NUMBER: _ClassVar[int]
    DIRTY_FIELD_NUMBER: _ClassVar[int]
    path: str
    branch: str
    agent_session_id: str
    session_status: str
    forgotten: bool
    dirty: bool
    def __init__(self, path: _Optional[str] = ..., branch: _Optional[str] = ..., agent_session_id: _Optional[str] = ..., session_status: _Optional[str] = ..., forgotten: _Optional[bool] = ..., dirty: _Optional[bool] = ...) -> None: ...

class ListWorktreesResponse(_message.Message):
    __slots__ = ("worktrees",)
    WORKTREES_FIELD_NUMBER: _ClassVar[int]
    worktrees: _containers.RepeatedCompositeFieldContainer[Worktree]
    def __init__(self, worktrees: _Optional[_Iterable[_Union[Worktree, _Mapping]]] = ...) -> None: ...

class RemoveWorktreeResponse(_message.Message):
    __slots__ = ("removed", "branch", "branch_deleted")
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    BRANCH_DELETED_FIELD_NUMBER: _ClassVar[int]
    removed: bool
    branch: str
    branch_deleted: bool
    def __init__(self, removed: _Optional[bool] = ..., branch: _Optional[str] = ..., branch_deleted: _Optional[bool] = ...) -> None: ...

class GetMachineInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MachineInfo(_message.Message):
    __slots__ = ("hostname", "daemon_version", "git_version", "claude_version", "codex_version", "sessions_by_status", "max_sessions", "running_sessions", "repos_root", "worktrees_root")
    class SessionsByStatusEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    DAEMON_VERSION_FIELD_NUMBER: _ClassVar[int]
    GIT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CLAUDE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CODEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    REPOS_ROOT_FIELD_NUMBER: _ClassVar[int]
    WORKTREES_ROOT_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    daemon_version: str
    git_version: str
    claude_version: str
    codex_version: str
    sessions_by_status: _containers.ScalarMap[str, int]
    max_sessions: int
    running_sessions: int
    repos_root: str
    worktrees_root: str
    def __init__(self, hostname: _Optional[str] = ..., daemon_version: _Optional[str] = ..., git_version: _Optional[str] = ..., claude_version: _Optional[str] = ..., codex_version: _Optional[str] = ..., sessions_by_status: _Optional[_Mapping[str, int]] = ..., max_sessions: _Optional[int] = ..., running_sessions: _Optional[int] = ..., repos_root: _Optional[str] = ..., worktrees_root: _Optional[str] = ...) -> None: ...

class ListApprovalsRequest(_message.Message):
    __slots__ = ("agent_session_id", "owner", "status")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    owner: str
    status: str
    def __init__(self, agent_session_id: _Optional[str] = ..., owner: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class ListApprovalsResponse(_message.Message):
    __slots__ = ("approvals",)
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    approvals: _containers.RepeatedCompositeFieldContainer[Approval]
    def __init__(self, approvals: _Optional[_Iterable[_Union[Approval, _Mapping]]] = ...) -> None: ...

class DecideApprovalRequest(_message.Message):
    __slots__ = ("agent_session_id", "approval_id", "owner", "decision", "message", "updated_input", "remember")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_INPUT_FIELD_NUMBER: _ClassVar[int]
    REMEMBER_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    approval_id: str
    owner: str
    decision: str
    message: str
    updated_input: _struct_pb2.Struct
    remember: bool
    def __init__(self, agent_session_id: _Optional[str] = ..., approval_id: _Optional[str] = ..., owner: _Optional[str] = ..., decision: _Optional[str] = ..., message: _Optional[str] = ..., updated_input: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., remember: _Optional[bool] = ...) -> None: ...

class Approval(_message.Message):
    __slots__ = ("id", "agent_session_id", "kind", "tool_name", "input", "status", "created_at", "decided_at", "message", "remember", "tool_use_id", "decided_by", "detail")
    ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TOOL_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REMEMBER_FIELD_NUMBER: _ClassVar[int]
    TOOL_USE_ID_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    id: str
    agent_session_id: str
    kind: str
    tool_name: str
    input: _struct_pb2.Struct
    status: str
    created_at: str
    decided_at: str
    message: str
    remember: bool
    tool_use_id: str
    decided_by: str
    detail: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., agent_session_id: _Optional[str] = ..., kind: _Optional[str] = ..., tool_name: _Optional[str] = ..., input: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., status: _Optional[str] = ..., created_at: _Optional[str] = ..., decided_at: _Optional[str] = ..., message: _Optional[str] = ..., remember: _Optional[bool] = ..., tool_use_id: _Optional[str] = ..., decided_by: _Optional[str] = ..., detail: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetDiffRequest(_message.Message):
    __slots__ = ("agent_session_id", "owner", "path", "stat_only", "max_patch_bytes")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    STAT_ONLY_FIELD_NUMBER: _ClassVar[int]
    MAX_PATCH_BYTES_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    owner: str
    path: str
    stat_only: bool
    max_patch_bytes: int
    def __init__(self, agent_session_id: _Optional[str] = ..., owner: _Optional[str] = ..., path: _Optional[str] = ..., stat_only: _Optional[bool] = ..., max_patch_bytes: _Optional[int] = ...) -> None: ...

class DiffFile(_message.Message):
    __slots__ = ("path", "old_path", "status", "additions", "deletions")
    PATH_FIELD_NUMBER: _ClassVar[int]
    OLD_PATH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ADDITIONS_FIELD_NUMBER: _ClassVar[int]
    DELETIONS_FIELD_NUMBER: _ClassVar[int]
    path: str
    old_path: str
    status: str
    additions: int
    deletions: int
    def __init__(self, path: _Optional[str] = ..., old_path: _Optional[str] = ..., status: _Optional[str] = ..., additions: _Optional[int] = ..., deletions: _Optional[int] = ...) -> None: ...

class Diff(_message.Message):
    __slots__ = ("base_ref", "base_commit", "head_commit", "files", "patch", "truncated")
    BASE_REF_FIELD_NUMBER: _ClassVar[int]
    BASE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    HEAD_COMMIT_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    base_ref: str
    base_commit: str
    head_commit: str
    files: _containers.RepeatedCompositeFieldContainer[DiffFile]
    patch: str
    truncated: bool
    def __init__(self, base_ref: _Optional[str] = ..., base_commit: _Optional[str] = ..., head_commit: _Optional[str] = ..., files: _Optional[_Iterable[_Union[DiffFile, _Mapping]]] = ..., patch: _Optional[str] = ..., truncated: _Optional[bool] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("agent_session_id", "owner", "message", "author")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    owner: str
    message: str
    author: str
    def __init__(self, agent_session_id: _Optional[str] = ..., owner: _Optional[str] = ..., message: _Optional[str] = ..., author: _Optional[str] = ...) -> None: ...

class CommitResponse(_message.Message):
    __slots__ = ("commit",)
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    commit: str
    def __init__(self, commit: _Optional[str] = ...) -> None: ...

class MergeRequest(_message.Message):
    __slots__ = ("agent_session_id", "owner", "into", "strategy", "message")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    INTO_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    owner: str
    into: str
    strategy: str
    message: str
    def __init__(self, agent_session_id: _Optional[str] = ..., owner: _Optional[str] = ..., into: _Optional[str] = ..., strategy: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class MergeResponse(_message.Message):
    __slots__ = ("merged_commit", "into", "strategy", "conflicts")
    MERGED_COMMIT_FIELD_NUMBER: _ClassVar[int]
    INTO_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    merged_commit: str
    into: str
    strategy: str
    conflicts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, merged_commit: _Optional[str] = ..., into: _Optional[str] = ..., strategy: _Optional[str] = ..., conflicts: _Optional[_Iterable[str]] = ...) -> None: ...

class PushRequest(_message.Message):
    __slots__ = ("agent_session_id", "owner", "remote", "branch")
    AGENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    agent_session_id: str
    owner: str
    remote: str
    branch: str
    def __init__(self, agent_session_id: _Optional[str] = ..., owner: _Optional[str] = ..., remote: _Optional[str] = ..., branch: _Optional[str] = ...) -> None: ...

class PushResponse(_message.Message):
    __slots__ = ("remote", "ref")
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    remote: str
    ref: str
    def __init__(self, remote: _Optional[str] = ..., ref: _Optional[str] = ...) -> None: ...
