"""The [pool] table of the daemon config: on by default, bounded, errors name the field."""

from __future__ import annotations

import pytest

from daemon.config import from_dict


def test_pool_keeps_two_ready_worktrees_by_default():
    assert from_dict({}).pool.size == 2


def test_pool_size_zero_turns_the_pool_off():
    assert from_dict({"pool": {"size": 0}}).pool.size == 0


@pytest.mark.parametrize("bad", [-1, 17, "2", 1.5, True])
def test_bad_pool_size_is_refused_naming_the_field(bad):
    with pytest.raises(ValueError, match=r"pool\.size"):
        from_dict({"pool": {"size": bad}})
