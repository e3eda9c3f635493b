"""Fixtures for the daemon tests: real daemon processes and real git repositories."""

from tests.support.daemon_proc import daemon, daemon_factory  # noqa: F401 - fixtures
from tests.support.git_repos import git_repo, make_git_repo  # noqa: F401 - fixtures
