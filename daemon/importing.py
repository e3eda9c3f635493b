"""Import a conversation for Claude Code to resume: its messages written as a session file in a worktree."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon import transcripts
from daemon.config import DaemonConfig
from daemon.errors import FailedPrecondition, InvalidArgument, NotFound
from daemon.launch_request import LaunchRequest
from daemon.ownership import check_worktree_free
from daemon.repositories import Repositories
from daemon.store import StateStore
from daemon.validation import validate_owner, validate_provider_session_id, validate_worktree_name
from daemon.worktrees import WorktreeInfo, Worktrees

__all__ = ["ImportResult", "TranscriptImporter"]


@dataclass
class ImportResult:
    """Where an imported conversation was written, and the worktree it belongs to."""

    path: Path
    worktree_path: Path
    branch: str
    message_count: int
    worktree_created: bool


class TranscriptImporter:
    """Writes imported conversations where `claude --resume` finds them (`live`: running session ids)."""

    def __init__(
        self,
        config: DaemonConfig,
        store: Callable[[], StateStore],
        repositories: Repositories,
        worktrees: Worktrees,
        live: Container[str],
    ) -> None:
        self._config = config
        self._store = store
        self._repositories = repositories
        self._worktrees = worktrees
        self._live = live

    async def import_transcript(
        self,
        *,
        provider_session_id: str,
        messages: list[dict[str, Any]],
        worktree_path: str = "",
        repository: str = "",
        worktree_name: str = "",
        base_ref: str = "",
        owner: str = "",
    ) -> ImportResult:
        """Write `messages` as a Claude Code session file for the worktree; the provider session id
        is recorded as `owner`'s (FailedPrecondition when it is another owner's)."""
        validate_provider_session_id(provider_session_id, "provider_session_id")
        validate_owner(owner)
        if not messages:
            raise InvalidArgument("messages", "at least one message is required")
        store = self._store()
        holder = store.provider_session_owner(provider_session_id)
        if holder is not None and holder != owner:
            raise FailedPrecondition(
                f"provider_session_id: {provider_session_id} belongs to another owner on this machine",
                field="provider_session_id",
            )
        created = False
        info: WorktreeInfo | None = None
        if worktree_path:
            path = Path(worktree_path)
            if not path.is_dir():
                raise NotFound(f"worktree_path {worktree_path} does not exist")
            branch = ""
        else:
            if not repository:
                raise InvalidArgument("repository", "is required when worktree_path is empty")
            if not worktree_name:
                raise InvalidArgument("worktree_name", "is required when worktree_path is empty")
            validate_worktree_name(worktree_name)
            repo = await self._repositories.resolve(repository)
            check_worktree_free(
                store,
                self._live,
                self._worktrees.worktree_path(repo, worktree_name),
                LaunchRequest(repository=repository, worktree_name=worktree_name, owner=owner),
            )
            info = await self._worktrees.ensure(repo, worktree_name, base_ref)
            path, branch, created = info.path, info.branch, info.created
        config_dir = self._config.provider("claude_code").env.get("CLAUDE_CONFIG_DIR") or None
        try:
            written = await asyncio.to_thread(
                transcripts.write_claude_transcript,
                path,
                provider_session_id,
                messages,
                config_dir=Path(config_dir) if config_dir else None,
            )
        except BaseException:
            if info is not None and created:
                await self._worktrees.rollback(info)
            raise
        store.claim_provider_session(provider_session_id, owner)
        return ImportResult(
            path=written, worktree_path=path, branch=branch, message_count=len(messages), worktree_created=created
        )
