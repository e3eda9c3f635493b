"""The REST contract as pydantic models: the three seed documents (names kept exactly) plus additions.

Size: the whole REST contract's models, grouped by resource; one file is what a reader of the
seed documents compares against, and each model is a few lines.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, field_validator, with_config
from typing_extensions import TypedDict

from controlplane.statuses import SessionStatus

__all__ = [
    "AGENT_TO_PROVIDER",
    "PROVIDER_SESSION_ID",
    "PROVIDER_TO_AGENT",
    "AgentId",
    "ClaudeCodeFileReport",
    "ClaudeCodeProviderSettings",
    "CodeSettings",
    "CodexProviderSettings",
    "Content",
    "ImportClaudeSessionRequest",
    "ImportClaudeSessionResponse",
    "ImportableMessage",
    "LaunchWorkspaceSessionRequest",
    "LaunchWorkspaceSessionResponse",
    "MachineCreate",
    "MachineOut",
    "MachineUpdate",
    "MessageList",
    "MessageOut",
    "ProviderSettings",
    "SendMessageRequest",
    "SendMessageResponse",
    "SessionCreate",
    "SessionCreated",
    "SessionDetail",
    "SessionList",
    "SessionSettings",
    "SessionStatus",
    "SessionSummary",
    "SessionUpdate",
    "TokenCreate",
    "TokenCreated",
    "TokenOut",
    "VoiceSettings",
    "WorkspaceCreate",
    "WorkspaceOut",
    "WorkspaceUpdate",
]

AgentId = Literal["CLAUDE_CODE", "CODEX"]
AGENT_TO_PROVIDER = {"CLAUDE_CODE": "claude_code", "CODEX": "codex"}
PROVIDER_TO_AGENT = {v: k for k, v in AGENT_TO_PROVIDER.items()}

_WORKTREE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
# Claude session ids and Codex thread ids: UUIDs. Nothing else reaches an agent as a provider id.
PROVIDER_SESSION_ID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_UUID_PATTERN = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
# A model name as the CLIs take it; never one that could read as an option.
_MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/\[\]@+-]{0,199}$"
ContentType = Literal["text", "tool_use", "tool_result", "error", "system", "approval_request", "approval_decision"]
# A tool rule in Claude Code's syntax ("Read", "Bash(npm test:*)"); "Bash" also names codex's shell tool.
ToolRule = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,99}(\([^\x00-\x1f\x7f()]{1,400}\))?$")]
ApprovalTimeout = Annotated[float, Field(gt=0, le=86400)]
MaxTurns = Annotated[int, Field(ge=1, le=1_000_000)]
MaxCost = Annotated[float, Field(gt=0, le=1_000_000)]
Permissions = Literal["ask", "auto", "deny"]
_ADDRESS = re.compile(r"^(unix:(//)?/\S+|[A-Za-z0-9.\-]+:\d{1,5}|\[[0-9A-Fa-f:]+\]:\d{1,5})$")


class _Strict(BaseModel):
    """Request bodies: unknown fields are an error naming the field."""

    model_config = ConfigDict(extra="forbid")


def _check_worktree_name(v: str | None) -> str | None:
    if v is None or v == "":
        return None
    if not _WORKTREE_NAME.match(v) or ".." in v or v.endswith((".lock", "/", ".")) or "//" in v:
        raise ValueError("must be 1-200 characters of letters, digits, '.', '_', '-', '/' (no '..', no leading '-')")
    if len(v) + v.count("/") > 255:
        raise ValueError("names one directory with each '/' written as '--': at most 255 characters so")
    return v


# --- import-claude-session.txt -------------------------------------------------------------------


# Content and ImportableMessage are TypedDicts, not models: an import validates up to tens of thousands
# of them, and plain dicts validate several times faster (and need no dumping afterwards).
@with_config(ConfigDict(extra="ignore"))
class Content(TypedDict, total=False):
    """A message's content (text, tool_use, tool_result, error, system); `type` defaults to "text"."""

    type: ContentType
    text: str | None
    name: str | None
    tool_use_id: str | None
    arguments: dict[str, Any] | None
    output: Any
    is_error: bool | None
    success: bool | None
    message: str | None


@with_config(ConfigDict(extra="ignore"))
class ImportableMessage(TypedDict):
    """One message of an imported Claude CLI session."""

    message_id: NotRequired[str | None]
    role: Literal["user", "assistant", "system", "tool"]
    content: Content
    created_at: NotRequired[str | None]
    metadata: NotRequired[dict[str, Any]]


class ImportClaudeSessionRequest(_Strict):
    """Request to import messages from a Claude CLI session."""

    workspace_id: str = Field(min_length=1, description="Workspace ID to import the session into")
    claude_session_id: str = Field(
        pattern=_UUID_PATTERN,
        description="Original Claude CLI session ID (used as SDK resume ID): a UUID, as Claude Code writes it",
    )
    messages: list[ImportableMessage] = Field(description="Messages to import from the Claude CLI session")
    worktree_name: str | None = Field(
        default=None,
        description="Optional worktree name (null for main workspace). The main workspace is the workspace's "
        "main line: a session without a name gets a worktree of its own on branch berth/<agent_session_id>, "
        "made from the workspace's base_ref. The repository's own checkout is never handed to an agent, so "
        "nothing there (uncommitted work included) is touched.",
    )
    session_name: str | None = Field(default=None, max_length=500, description="Optional name for the imported session")

    _wt = field_validator("worktree_name")(_check_worktree_name)


class ClaudeCodeFileReport(BaseModel):
    """What an import of a Claude Code session file left out of the messages, counted."""

    lines_skipped: dict[str, int] = Field(
        description="Lines that are not conversation, by reason: sidechain, meta, local command, other "
        "branch (abandoned by a rewind), or the line's type (summary, file-history-snapshot, system …)"
    )
    blocks_kept_as_metadata: dict[str, int] = Field(
        description="Content blocks kept in their message's metadata (claude_code_blocks), by type: "
        "thinking, image, document …"
    )


class ImportClaudeSessionResponse(BaseModel):
    """Response from importing a Claude CLI session."""

    success: bool
    user_session_id: str | None = None
    agent_session_id: str | None = None
    message_count: int = 0
    error: str | None = None
    claude_code_file: ClaudeCodeFileReport | None = Field(
        default=None, description="Only when the body was a Claude Code session file (application/x-ndjson)"
    )


# --- launch-workspace-session.txt ----------------------------------------------------------------


class ClaudeCodeProviderSettings(_Strict):
    model: str | None = Field(default=None, pattern=_MODEL_PATTERN)


class CodexProviderSettings(_Strict):
    model: str | None = Field(default=None, pattern=_MODEL_PATTERN)
    thinking: Literal["minimal", "low", "medium", "high"] | None = None


class ProviderSettings(_Strict):
    claude_code: ClaudeCodeProviderSettings | None = None
    codex: CodexProviderSettings | None = None


class CodeSettings(_Strict):
    mode: Literal["agent", "plan"] = Field(
        default="agent", description='"agent", or (an addition) "plan": read and plan only, nothing is written'
    )
    default_provider: Literal["claude_code", "codex"] | None = None
    providers: ProviderSettings | None = None
    # Additions: how the agent's permission requests are answered.
    permissions: Permissions | None = Field(
        default=None,
        description='"ask" (default): edits inside the worktree run, what the CLI would ask a person about '
        'becomes an approval (GET/POST /api/sessions/{id}/approvals); "auto": everything runs unasked, where the '
        'CLI permits it (409 where it does not, e.g. claude as root); "deny": refused unasked',
    )
    allowed_tools: list[ToolRule] | None = Field(
        default=None,
        max_length=200,
        description='Tool rules that run unasked, added to the workspace\'s, e.g. ["Bash(npm test:*)"]',
    )
    approval_timeout_seconds: ApprovalTimeout | None = Field(
        default=None, description="Refuse an approval nobody answers within this time (default: the workspace's)"
    )
    max_turns: MaxTurns | None = Field(
        default=None, description="Stop the session after this many turns (default: the workspace's)"
    )
    max_cost_usd: MaxCost | None = Field(
        default=None,
        description="Stop the session once its turns cost this much, as the agent reports it "
        "(claude does; codex reports no cost) (default: the workspace's)",
    )


class VoiceSettings(_Strict):
    language: str | None = None


class SessionSettings(_Strict):
    """Optional session settings overrides for this launch."""

    code: CodeSettings | None = None
    voice: VoiceSettings | None = None


class LaunchWorkspaceSessionRequest(_Strict):
    """Request body used to start a session for a workspace."""

    machine_id: str | None = Field(default=None, description="Machine to launch on; default: the workspace's")
    user_session_id: str | None = Field(default=None, description="Existing user session to reuse")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Arbitrary metadata describing the launch")
    initial_prompt: str | None = Field(default=None, description="Prompt delivered to the coding agent at startup")
    worktree_name: str | None = Field(
        default=None,
        description="Name for the git worktree/branch of this session; null: branch berth/<agent_session_id> "
        "in a worktree of its own (the repository's own checkout is never used)",
    )
    session_settings: SessionSettings | None = Field(default=None, description="Optional session settings overrides")
    resume_session_id: str | None = Field(
        default=None,
        max_length=200,
        description="SDK session ID to resume from: the agent_session_id of one of your sessions (e.g. an import) "
        "or a provider session id (a UUID) recorded for one of them",
    )
    agent_session_id: str | None = Field(
        default=None, max_length=200, description="Existing agent session ID to connect to"
    )
    # Addition: commit-ish the new branch starts from (default: the workspace's base_ref, else HEAD).
    base_ref: str | None = Field(default=None, max_length=500)

    _wt = field_validator("worktree_name")(_check_worktree_name)


class LaunchWorkspaceSessionResponse(BaseModel):
    """Daemon acknowledgement returned after a launch request."""

    status: str = Field(description="Launch status ('ok' or 'error')")
    payload: dict[str, Any] = Field(default_factory=dict)


# --- session-api.txt -----------------------------------------------------------------------------


class SessionCreate(_Strict):
    """POST /api/sessions. workspace_id/machine_id/worktree_name/model are additions."""

    agent_id: AgentId
    task_id: str | None = Field(default=None, max_length=200)
    prompt: str | None = None
    workspace_id: str | None = None
    machine_id: str | None = None
    worktree_name: str | None = None
    model: str | None = Field(default=None, pattern=_MODEL_PATTERN)

    _wt = field_validator("worktree_name")(_check_worktree_name)


class SessionCreated(BaseModel):
    id: str
    agent_id: str
    task_id: str | None
    status: str
    created_at: datetime
    # Additions.
    workspace_id: str | None = None
    machine_id: str | None = None
    user_session_id: str | None = None
    launch: LaunchWorkspaceSessionResponse | None = None


class Usage(BaseModel):
    """The agent's usage summed over its turns, from the agents' own reports."""

    input_tokens: int = Field(description="Input tokens, cache reads not included")
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    cost_usd: float | None = Field(description="null where the agent does not say (codex)")
    turns: int
    duration_ms: int


class SessionSummary(BaseModel):
    id: str
    agent_id: str
    task_id: str | None
    status: str
    created_at: datetime
    last_active: datetime | None
    message_count: int
    # Additions.
    workspace_id: str | None = None
    machine_id: str | None = None
    user_session_id: str | None = None
    pending_approvals: int = Field(default=0, description="Approvals waiting for a decision")
    usage: Usage | None = None
    provider_session_id: str | None = Field(
        default=None,
        description="The agent's own session id (Claude's session "
        "id, Codex's thread id) once the daemon knows it; a resume_session_id",
    )


class SessionDetail(SessionSummary):
    data: dict[str, Any]
    prompt: str | None = None
    worktree_name: str | None = None
    last_error: str | None = None
    launched: bool = Field(
        default=False,
        description="The session was handed to a daemon; a `created` one that "
        'was not waits for PATCH {"status": "active"} (or a launch) to start',
    )


class SessionList(BaseModel):
    sessions: list[SessionSummary]
    total: int
    limit: int
    offset: int


class SessionUpdate(_Strict):
    status: SessionStatus | None = None
    data: dict[str, Any] | None = None
    prompt: str | None = None


class SendMessageRequest(_Strict):
    content: str = Field(min_length=1)


class SendMessageResponse(BaseModel):
    message_id: str
    status: str
    timestamp: str


class MessageOut(BaseModel):
    id: str
    seq: int | None
    role: str
    content: dict[str, Any]
    created_at: datetime
    metadata: dict[str, Any]
    status: str | None = None


class MessageList(BaseModel):
    messages: list[MessageOut]
    total: int
    limit: int
    offset: int


# --- admin ---------------------------------------------------------------------------------------


class MachineCreate(_Strict):
    name: str = Field(min_length=1, max_length=200)
    address: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="unix:/path/to/daemon.sock or host:port (required unless dial_out)",
    )
    tls_ca: str | None = Field(default=None, description="PEM CA that signs the daemon's TLS certificate")
    token: str | None = Field(default=None, description="The daemon's bearer token (never returned)")
    owner: str | None = Field(default=None, description="Owner the machine belongs to (default: the caller)")
    dial_out: bool = Field(
        default=False,
        description="The daemon dials the control plane's tunnel listener (a machine behind NAT): no address; "
        "the answer carries a one-time enrollment_token for `berth-daemon enroll`",
    )

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None and not _ADDRESS.match(v):
            raise ValueError("must be unix:/absolute/path or host:port")
        return v


class MachineUpdate(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    address: str | None = Field(default=None, min_length=1, max_length=1000)
    tls_ca: str | None = None
    token: str | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None and not _ADDRESS.match(v):
            raise ValueError("must be unix:/absolute/path or host:port")
        return v


class MachineOut(BaseModel):
    id: str
    owner: str
    name: str
    address: str
    has_tls_ca: bool
    has_token: bool
    created_at: datetime
    dial_out: bool = False
    enrolled: bool | None = Field(default=None, description="dial-out machines: whether a credential is issued")
    online: bool | None = Field(default=None, description="dial-out machines: whether its tunnel is open")
    connected_since: datetime | None = Field(default=None, description="dial-out machines: when its tunnel opened")
    last_seen: datetime | None = Field(
        default=None,
        description="dial-out machines: now while its tunnel is open (keepalives end a dead one within 20 s), "
        "else when it closed",
    )


class MachineCreated(MachineOut):
    enrollment_token: str | None = Field(
        default=None, description="dial-out machines: the one-time token for `berth-daemon enroll` (shown once)"
    )


class EnrollmentOut(BaseModel):
    machine_id: str
    enrollment_token: str = Field(description="One-time token for `berth-daemon enroll` (shown once)")
    expires_at: datetime


class EnrollRequest(_Strict):
    token: str = Field(min_length=1, max_length=200, description="The machine's enrollment token")


class Enrolled(BaseModel):
    machine_id: str
    credential: str = Field(description="The machine credential its daemon presents on the tunnel (shown once)")
    tunnel_address: str = Field(description="host:port of the control plane's tunnel listener")
    tunnel_tls: bool = Field(description="Whether that listener speaks TLS (plaintext only on loopback)")


class WorkspaceCreate(_Strict):
    name: str = Field(min_length=1, max_length=200)
    repository: str = Field(min_length=1, max_length=2000, description="Path or clone URL on the machine")
    default_machine_id: str | None = None
    base_ref: str | None = Field(default=None, max_length=500)
    allowed_tools: list[ToolRule] = Field(
        default_factory=list,
        max_length=200,
        description='Tool rules every session of the workspace runs unasked, e.g. ["Read", "Bash(npm test:*)"]',
    )
    approval_timeout_seconds: ApprovalTimeout | None = Field(
        default=None, description="A pending approval nobody answers within this time is refused (default: none)"
    )
    max_turns: MaxTurns | None = Field(default=None, description="Budget of every session: turns")
    max_cost_usd: MaxCost | None = Field(default=None, description="Budget of every session: cost in USD")
    owner: str | None = Field(default=None, description="Owner the workspace belongs to (default: the caller)")


class WorkspaceUpdate(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    repository: str | None = Field(default=None, min_length=1, max_length=2000)
    default_machine_id: str | None = None
    base_ref: str | None = Field(default=None, max_length=500)
    allowed_tools: list[ToolRule] | None = Field(default=None, max_length=200)
    approval_timeout_seconds: ApprovalTimeout | None = None
    max_turns: MaxTurns | None = None
    max_cost_usd: MaxCost | None = None


class WorkspaceOut(BaseModel):
    id: str
    owner: str
    name: str
    repository: str
    default_machine_id: str | None
    base_ref: str | None
    created_at: datetime
    allowed_tools: list[str] = Field(default_factory=list)
    approval_timeout_seconds: float | None = None
    max_turns: int | None = None
    max_cost_usd: float | None = None


class TokenCreate(_Strict):
    owner: str = Field(min_length=1, max_length=200)
    is_admin: bool = False
    name: str | None = Field(default=None, max_length=200)


class TokenOut(BaseModel):
    id: str
    owner: str
    is_admin: bool
    name: str | None
    created_at: datetime


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself; shown only in this response")


# --- approvals (an addition) ---------------------------------------------------------------------

ApprovalStatus = Literal["pending", "allowed", "denied", "cancelled", "expired"]


class Approval(BaseModel):
    """A permission request of the agent (may this tool run?) or its question for the user."""

    id: str
    tool_name: str = Field(description="e.g. Bash, Write, AskUserQuestion; codex: command_execution, file_change")
    input: dict[str, Any] = Field(description="The tool's input as the agent asked to run it")
    kind: Literal["permission", "question"]
    status: ApprovalStatus
    created_at: datetime
    decided_at: datetime | None = None
    message: str | None = Field(default=None, description="The decision's reason, or why it ended without one")
    # Additions to the shape.
    decided_by: str | None = Field(
        default=None, description='"user", "rule" (allow-list or remembered), "timeout", "agent" (withdrawn)'
    )
    remember: bool = False
    tool_use_id: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict, description="What else the agent said (suggestions …)")


class ApprovalList(BaseModel):
    approvals: list[Approval]


class ApprovalDecision(_Strict):
    """POST /api/sessions/{id}/approvals/{approval_id}."""

    decision: Literal["allow", "deny"]
    message: str | None = Field(default=None, max_length=10000, description="The reason; the model reads it")
    updated_input: dict[str, Any] | None = Field(
        default=None,
        description="The tool's input as it should run; for a question, its answers: claude "
        '{"answers": {"<question>": "<label>"}}, codex {"answers": {"<id>": {"answers": ["<label>"]}}}',
    )
    remember: bool = Field(default=False, description="Allow this command (shell) or tool for the rest of the session")


# --- review and ship (an addition) ---------------------------------------------------------------


class DiffFileOut(BaseModel):
    path: str
    old_path: str | None = None
    status: Literal["added", "modified", "deleted", "renamed", "binary"]
    additions: int
    deletions: int


class DiffResult(BaseModel):
    base_ref: str | None = None
    base_commit: str
    head_commit: str
    files: list[DiffFileOut]
    patch: str | None = Field(default=None, description="The unified diff (null with stat_only)")
    truncated: bool = False


class CommitRequest(_Strict):
    message: str = Field(min_length=1, max_length=100_000)
    author: str | None = Field(
        default=None,
        max_length=400,
        pattern=r"^[^<>\x00-\x1f]{1,200} <[^<>\s\x00-\x1f]{1,200}>$",
        description='"Name <email>"; default: git\'s configured user on the machine',
    )


class CommitResult(BaseModel):
    commit: str


class MergeRequest(_Strict):
    into: str | None = Field(default=None, max_length=200, description="Branch to merge into; default: the base branch")
    strategy: Literal["merge", "squash", "fast-forward"] = "merge"
    message: str | None = Field(default=None, max_length=100_000)


class MergeResult(BaseModel):
    merged_commit: str
    into: str
    strategy: str


class PushRequest(_Strict):
    remote: str = Field(default="origin", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    branch: str | None = Field(default=None, max_length=200, description="Remote branch; default: the session's")


class PushResult(BaseModel):
    remote: str
    ref: str


# --- worktrees of a workspace (an addition) -------------------------------------------------------


class WorktreeOut(BaseModel):
    path: str = Field(description="The worktree's directory on the machine")
    branch: str
    dirty: bool = Field(description="Uncommitted changes or untracked files")
    agent_session_id: str = Field(description="The session that last ran in it")
    session_status: str | None = Field(default=None, description="That session's status; null once it was deleted")
    session_deleted: bool = Field(description="Its session was deleted: `prune` removes it")


class WorktreeList(BaseModel):
    workspace_id: str
    machine_id: str
    worktrees: list[WorktreeOut]


class PruneRequest(_Strict):
    machine_id: str | None = Field(default=None, max_length=64, description="Default: the workspace's default machine")
    force: bool = Field(default=False, description="Remove worktrees with uncommitted work too")


class PrunedWorktree(BaseModel):
    path: str
    branch: str
    agent_session_id: str
    branch_deleted: bool = Field(description="The branch went too: its commits are on another branch")


class KeptWorktree(BaseModel):
    path: str
    branch: str
    agent_session_id: str
    reason: str


class PruneResult(BaseModel):
    workspace_id: str
    machine_id: str
    removed: list[PrunedWorktree]
    kept: list[KeptWorktree]


# --- usage report (an addition) ------------------------------------------------------------------


class UsageGroup(Usage):
    key: str = Field(description="The workspace id, the owner, or the UTC day (YYYY-MM-DD)")
    sessions: int


class UsageReport(BaseModel):
    group_by: Literal["workspace", "owner", "day"]
    since: datetime | None = None
    until: datetime | None = None
    groups: list[UsageGroup]
