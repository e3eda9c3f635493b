"""TokenCache: resolved tokens are remembered briefly; revoked ones are forgotten at once and stay out."""

from __future__ import annotations

from controlplane.auth import Principal, TokenCache


def _principal(token_id: str = "tok-1") -> Principal:
    return Principal(owner="alice", is_admin=False, token_id=token_id)


def test_cached_principal_is_returned_until_its_time_to_live_ends():
    cache = TokenCache(ttl=60.0)
    cache.put("digest-a", _principal())
    assert cache.get("digest-a") == _principal()
    assert cache.get("digest-b") is None
    expired = TokenCache(ttl=-1.0)
    expired.put("digest-a", _principal())
    assert expired.get("digest-a") is None


def test_revoked_token_is_dropped_and_cannot_be_put_back_by_a_racing_lookup():
    cache = TokenCache(ttl=60.0)
    cache.put("digest-a", _principal("tok-1"))
    cache.put("digest-b", _principal("tok-2"))
    cache.drop_token("tok-1")
    assert cache.get("digest-a") is None
    assert cache.get("digest-b") == _principal("tok-2")
    cache.put("digest-a", _principal("tok-1"))
    assert cache.get("digest-a") is None


def test_cache_stays_bounded():
    cache = TokenCache(ttl=60.0, max_entries=3)
    for i in range(10):
        cache.put(f"digest-{i}", _principal(f"tok-{i}"))
    assert cache.get("digest-9") == _principal("tok-9")
    assert sum(cache.get(f"digest-{i}") is not None for i in range(10)) <= 3
