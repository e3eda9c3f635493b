"""Repositories a launch names: a local path is opened, a clone URL is cloned once into `repos_root`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import uuid
from pathlib import Path

import git as gitpython

from daemon.errors import FailedPrecondition, InvalidArgument, NotFound
from daemon.git_commands import GitError, git

__all__ = ["Repositories", "is_clone_url", "main_repository", "safe_name", "short_hash"]

log = logging.getLogger(__name__)

_URL_SCHEMES = ("https://", "http://", "ssh://", "git://", "file://")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:(?!//)\S+$")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def is_clone_url(repository: str) -> bool:
    """True when `repository` is a clone URL rather than a local path."""
    return repository.startswith(_URL_SCHEMES) or bool(_SCP_LIKE.match(repository))


def redact(url: str) -> str:
    """The URL without any user:password part (for error messages)."""
    return re.sub(r"://[^/@]+@", "://***@", url)


def short_hash(text: str) -> str:
    """Ten hex digits naming `text` in a directory name."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:10]


def safe_name(text: str) -> str:
    """`text` cut down to characters any file system takes, never starting with '.' or '-'."""
    name = _UNSAFE_NAME_CHARS.sub("-", text).lstrip(".-") or "repo"
    return name[:60]


def main_repository(path: Path) -> Path:
    """The main working tree (or bare git dir) of the repository `path` is in (FailedPrecondition if none)."""
    try:
        with gitpython.Repo(path) as repo:
            common = Path(repo.common_dir).resolve()
            if repo.bare:
                return common
            if common.name == ".git":
                return common.parent
            assert repo.working_tree_dir is not None  # not bare
            return Path(repo.working_tree_dir).resolve()
    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
        raise FailedPrecondition(f"repository is not a git repository: {path}") from None


class Repositories:
    """Resolves the `repository` of a request to a local repository, cloning URLs once."""

    def __init__(self, repos_root: Path) -> None:
        self.repos_root = Path(repos_root).expanduser()
        self._clone_locks: dict[Path, asyncio.Lock] = {}

    async def resolve(self, repository: str) -> Path:
        """The local repository for a path or clone URL (cloned once into repos_root)."""
        if not isinstance(repository, str) or not repository.strip():
            raise InvalidArgument("repository", "must be a local path or a clone URL")
        if "\x00" in repository or "\n" in repository:
            raise InvalidArgument("repository", "must not contain NUL or newline characters")
        if is_clone_url(repository):
            return await self._clone_once(repository)
        path = Path(repository).expanduser()
        if not path.is_absolute():
            raise InvalidArgument("repository", f"must be an absolute path or a clone URL (got {repository!r})")
        return await asyncio.to_thread(self._open_local, path, repository)

    async def known(self, repository: str) -> Path | None:
        """Like resolve(), but None for a clone URL that was never cloned (nothing is fetched)."""
        if isinstance(repository, str) and is_clone_url(repository) and not self._clone_target(repository).exists():
            return None
        return await self.resolve(repository)

    @staticmethod
    def _open_local(path: Path, original: str) -> Path:
        if not path.exists():
            raise NotFound(f"repository not found: {original}")
        if not path.is_dir():
            raise FailedPrecondition(f"repository is not a directory: {original}")
        try:
            return main_repository(path)
        except FailedPrecondition:
            raise FailedPrecondition(f"repository is not a git repository: {original}") from None

    def _clone_target(self, url: str) -> Path:
        stem = url.rstrip("/").removesuffix(".git")
        stem = re.split(r"[/:]", stem)[-1]
        return self.repos_root / f"{safe_name(stem)}-{short_hash(url)}"

    async def _clone_once(self, url: str) -> Path:
        target = self._clone_target(url)
        lock = self._clone_locks.setdefault(target, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(self._clone_sync, url, target)

    def _clone_sync(self, url: str, target: Path) -> Path:
        if target.exists():
            try:
                return main_repository(target)
            except FailedPrecondition:
                raise FailedPrecondition(f"clone directory {target} exists but is not a git repository") from None
        self.repos_root.mkdir(parents=True, exist_ok=True)
        # Clone beside the target and rename, so a failed clone leaves nothing behind.
        tmp = self.repos_root / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
        try:
            git(self.repos_root, "clone", "--quiet", "--", url, str(tmp))
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.is_dir():
                    raise
                # An earlier, abandoned call finished the same clone first; use that one.
        except GitError as exc:
            raise NotFound(f"repository cannot be cloned: {redact(url)}: {redact(exc.reason)}") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log.info("cloned %s into %s", redact(url), target)
        return target.resolve()
