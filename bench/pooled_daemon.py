"""`python -m bench.pooled_daemon --config FILE`: the real daemon entry point, with `[pool] size` applied.

A no-op wrapper once daemon/supervisor.py passes `config.pool.size` to its Worktrees;
until then it makes the benchmark's daemon honour the setting (the only difference).
"""

from __future__ import annotations

import inspect
import sys

from daemon import supervisor
from daemon.__main__ import main
from daemon.worktrees import Worktrees

__all__ = ["main"]


def _apply_pool_size() -> None:
    source = inspect.getsource(supervisor.Supervisor.__init__)
    if "pool" in source:
        return  # the supervisor wires it itself
    original = supervisor.Supervisor.__init__

    def init(self, config, *args, **kwargs):
        original(self, config, *args, **kwargs)
        self.worktrees = Worktrees(config.repos_root, config.worktrees_root, pool_size=config.pool.size)

    supervisor.Supervisor.__init__ = init


if __name__ == "__main__":
    _apply_pool_size()
    sys.exit(main())
