"""Which sockets a revocation closes, and how the poller walks auth's list, without sockets."""

from __future__ import annotations

from chorus.webgate.revocations import OVERLAP_MS, RevocationPoller, Watched


class FakeAuth:
    """Auth's ListRevocations: revocations as (ms, token id), and the asks it got."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.revoked: list[tuple[int, str]] = []
        self.asked: list[int] = []

    async def revocations(self, since_ms: int):
        self.asked.append(since_ms)
        return [t for at, t in self.revoked if at >= since_ms], self.now_ms


def test_a_revoked_token_closes_each_of_its_sockets_once():
    watched, closed = Watched(), []
    watched.watch("t1", lambda: closed.append("a"))
    watched.watch("t1", lambda: closed.append("b"))
    watched.watch("t2", lambda: closed.append("c"))
    watched.watch("", lambda: closed.append("site"))  # site tokens have no id: never revoked
    for close in watched.revoked(["t1", "t1", "unknown"]):
        close()
    assert sorted(closed) == ["a", "b"] and len(watched) == 1
    assert watched.revoked(["t1"]) == []


def test_a_socket_that_left_or_moved_is_not_closed_for_its_old_token():
    watched, closed = Watched(), []
    close = lambda: closed.append("x")  # noqa: E731
    watched.watch("old", close)
    watched.unwatch("old", close)
    watched.watch("new", close)
    assert watched.revoked(["old"]) == []
    assert len(watched.revoked(["new"])) == 1


async def test_the_poller_looks_back_from_each_answer_with_overlap():
    auth, watched, closed = FakeAuth(now_ms=100_000), Watched(), []
    watched.watch("t1", lambda: closed.append("t1"))
    poller = RevocationPoller(auth, watched, interval_secs=1, clock=lambda: 100.0)
    assert auth.asked == [] and await poller.poll() == 0
    assert auth.asked == [100_000 - OVERLAP_MS]
    # revoked "before" the last answer by auth's clock (committed late): still seen
    auth.revoked.append((99_000, "t1"))
    auth.now_ms = 101_000
    assert await poller.poll() == 1 and closed == ["t1"]
    assert auth.asked[-1] == 100_000 - OVERLAP_MS
    assert await poller.poll() == 0 and auth.asked[-1] == 101_000 - OVERLAP_MS
