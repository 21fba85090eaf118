"""Local session bookkeeping and the per-socket fan-out policy, with a fake transport."""

from chorus.webgate.sessions import LocalSessions, Session


class FakeTransport:
    def __init__(self, buffered=0):
        self.written = []
        self.buffered = buffered
        self.closing = False

    def write(self, data):
        self.written.append(data)

    def get_write_buffer_size(self):
        return self.buffered

    def is_closing(self):
        return self.closing


def make(sid, account, groups, transport=None, overflowed=None):
    return Session(sid, {"id": account}, dict.fromkeys(groups, "name"), transport or FakeTransport(),
                   max_send_buffer_bytes=100,
                   on_overflow=(overflowed.append if overflowed is not None else lambda s: None))


def test_acquire_and_release_report_only_zero_crossings():
    sessions = LocalSessions()
    assert sessions.acquire(["g1", "g2"]) == ["g1", "g2"]
    assert sessions.acquire(["g1"]) == []
    assert sessions.release(["g1"]) == []
    assert sessions.release(["g1", "g2"]) == ["g1", "g2"]
    assert sessions.subscribed() == frozenset()


def test_live_follows_attach_detach_and_group_changes():
    sessions = LocalSessions()
    a = make("s1", "alice", ["g1"])
    b = make("s2", "bob", ["g1", "g2"])
    sessions.attach(a)
    sessions.attach(b)
    assert sessions.live("g1") == {a, b}
    sessions.add_group(a, "g2", "Two")
    assert sessions.live("g2") == {a, b}
    sessions.remove_group(b, "g2")
    assert sessions.live("g2") == {a}
    sessions.detach(a)
    assert sessions.live("g1") == {b} and not sessions.live("g2")
    assert sessions.of_account("alice") == []


def test_push_writes_the_same_bytes_and_skips_closed_sockets():
    ok, closing = FakeTransport(), FakeTransport()
    closing.closing = True
    s1, s2 = make("s1", "a", [], ok), make("s2", "b", [], closing)
    for s in (s1, s2):
        s.push(b"frame")
    assert ok.written == [b"frame"]
    assert closing.written == [] and s2.closed


def test_slow_consumer_is_cut_off_once_and_gets_nothing_more():
    slow = FakeTransport(buffered=101)
    overflowed = []
    session = make("s1", "a", [], slow, overflowed)
    session.push(b"one")
    session.push(b"two")
    assert slow.written == []
    assert overflowed == [session], "the overflow handler runs once"
    assert session.closed
