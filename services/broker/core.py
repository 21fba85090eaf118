"""The broker's decisions, without sockets or SQL: requests in, replies and publications out.

The ZeroMQ driver (server.py) hands every ROUTER message to ``handle_request``
and every XPUB subscription message to ``handle_subscription``, calls
``flush`` once per poll round (after draining the ROUTER batch) and ``tick``
periodically, and sends whatever they return. Nothing a peer sends can stop
the broker: a bad envelope becomes a Failure reply, never an exception; a
failing store becomes Failure UNAVAILABLE.

Message policy: a Post is accepted only from a registered session whose
account is in the group by the broker's own membership table, which only the
membership service feeds (memberships.py; until its first snapshot is
complete, posts are refused NOT_READY). A session's claimed groups decide
nothing but where it shows as online. A SystemPost comes from a trusted
backend: no membership check, sender {id: "system", username = display_name =
sender_name}.
Accepted posts wait for ``flush`` (posting.py): the whole round is stored in
one transaction (a post whose idempotency key is already stored is answered
with its original ack instead, and nothing new is stored or published), then
each gets the group's next sequence number (per group, strictly increasing
and gap-free, continuing across restarts from the store),
is published ONCE on the group's topic (ZeroMQ copies it to each subscribed
gateway, not to each member) and acked. An ack therefore means "stored";
whoever saw the ack or the Delivery finds the message in History.

A MembershipChange flushes the pending posts first, so gateways see
deliveries and membership events in the order the broker decided them. It is
applied (routing table, MembershipEvent on the control topic) only if it is
newer than what the membership table holds for its (account, group): a
repeat, or an older change a membership replica delivers late, is answered
Done and publishes nothing, so each broker publishes a pair's changes in
increasing number.
History, GroupStates and MarkRead read or write the store directly (one short
transaction each); Online answers from the routing table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from google.protobuf.message import DecodeError

from chorus.common.text import describe_control, forbidden_control, is_invisible
from chorus.wire.pb import broker_pb2

from .barrier import SubscriptionBarrier
from .clustering import ClusterMember, cluster_info
from .errors import BadRequest, BrokerError, Forbidden, Moved, NotMember, NotReady, UnknownGateway, UnknownSession
from .memberships import MembershipTable
from .outputs import Output, Publish, Reply, failure, reply
from .ownership import MovedTo
from .posting import PendingPost, PostBatcher, delivery_of
from .records import Store
from .routing import RoutingTable
from chorus.wire.limits import (DEFAULT_HISTORY_PAGE, MAX_GROUPS_PER_REQUEST, MAX_HISTORY_PAGE, MAX_ID_CHARS,
                                MAX_IDEMPOTENCY_KEY_CHARS, MAX_SEQ)
from chorus.wire.senders import SYSTEM_SENDER_ID
from chorus.wire.topics import BARRIER_PREFIX, CONTROL_TOPIC

__all__ = ["BrokerCore", "Reply", "Publish", "Output", "DEFAULT_MAX_HISTORY_PAGE", "DEFAULT_KEY_RETENTION_SECS",
           "DEFAULT_HISTORY_PAGE", "MAX_SENDER_NAME_CHARS", "SYSTEM_SENDER_ID"]

log = logging.getLogger(__name__)
MAX_SENDER_NAME_CHARS = 64
DEFAULT_MAX_HISTORY_PAGE = MAX_HISTORY_PAGE  # larger limits are capped; Messages.more says the rest exists
DEFAULT_KEY_RETENTION_SECS = 24 * 3600.0   # a repeat within this gets the original ack
DEFAULT_KEY_PURGE_EVERY_SECS = 60.0


# What each role may ask (see chorus.common.curve for how a request's role is known).
ALLOWED: dict[str, frozenset[str]] = {
    "gateway": frozenset({"hello", "open_session", "close_session", "post", "sync", "history", "group_states",
                          "mark_read", "online", "cluster"}),
    "membership": frozenset({"hello", "membership_change", "membership_snapshot", "cluster"}),
    "internal": frozenset({"hello", "system_post", "history", "cluster"}),  # the Messages gRPC service, over inproc
    "broker": frozenset({"hello", "system_post", "history", "cluster"}),  # another broker's Messages service
}


class BrokerCore:
    def __init__(
        self,
        *,
        broker_id: str,
        store: Store,
        gateway_timeout_secs: float,
        max_text_chars: int,
        max_history_page: int = DEFAULT_MAX_HISTORY_PAGE,
        barrier_ttl_secs: float = 30.0,
        key_retention_secs: float = DEFAULT_KEY_RETENTION_SECS,
        key_purge_every_secs: float = DEFAULT_KEY_PURGE_EVERY_SECS,
        wall_clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
        cluster: ClusterMember | None = None,
    ) -> None:
        self.broker_id = broker_id
        self.routing = RoutingTable()
        self.memberships = MembershipTable()
        self._store = store
        self.cluster = cluster
        self.redirected_at: float | None = None  # the last post answered MOVED while leaving
        self._posts = PostBatcher(store, wall_clock_ms=wall_clock_ms,
                                  ownership=cluster.ownership if cluster else None,
                                  cluster=cluster.tables if cluster else None)
        self._gateway_timeout_secs = gateway_timeout_secs
        self._max_text_chars = max_text_chars
        self._max_history_page = max_history_page
        self._barrier = SubscriptionBarrier(ttl_secs=barrier_ttl_secs)
        self._monotonic = monotonic
        self._gateways: dict[bytes, float] = {}  # identity -> last heard (monotonic)
        self._key_retention_ms = int(key_retention_secs * 1000)
        self._key_purge_every_secs = key_purge_every_secs
        self._next_key_purge = monotonic()  # soon after start: whatever aged while we were down
        self._handlers = {
            "hello": self._hello,
            "open_session": self._open_session,
            "close_session": self._close_session,
            "post": self._post,
            "membership_change": self._membership_change,
            "sync": self._sync,
            "history": self._history,
            "group_states": self._group_states,
            "mark_read": self._mark_read,
            "online": self._online,
            "system_post": self._system_post,
            "membership_snapshot": self._membership_snapshot,
            "cluster": self._cluster,
        }

    # entry points -----------------------------------------------------------

    def handle_request(self, identity: bytes, payload: bytes, role: str | None = None) -> list[Output]:
        """One request from ``identity``. ``role`` is what the client's CURVE key says it is
        (chorus.common.curve); it may only ask what ALLOWED lists for it. None: no CURVE on
        this broker (a private network by choice, or a test), and every request is allowed."""
        request = broker_pb2.GatewayRequest()
        try:
            request.ParseFromString(payload)
        except DecodeError:
            return [failure(identity, 0, BadRequest("envelope is not a GatewayRequest"))]
        kind = request.WhichOneof("kind")
        try:
            if kind is None:
                raise BadRequest("GatewayRequest has no request in it")
            if role is not None and kind not in ALLOWED.get(role, ()):
                log.warning("refused %s from %r: role %s may not ask it", kind, identity, role)
                raise Forbidden(f"a {role} may not send {kind}")
            if kind != "hello":
                if identity not in self._gateways:
                    raise UnknownGateway("say Hello first")
                self._gateways[identity] = self._monotonic()
            return self._handlers[kind](identity, request.request_id, getattr(request, kind))
        except BrokerError as exc:
            return [failure(identity, request.request_id, exc)]
        except Exception:  # a bug of ours: answer this request, keep serving everyone
            log.exception("%s request failed unexpectedly", kind)
            return [failure(identity, request.request_id, BrokerError("internal error in the broker"))]

    def handle_subscription(self, message: bytes) -> list[Output]:
        """An XPUB message: b"\\x01" + topic subscribes, b"\\x00" + topic unsubscribes."""
        if len(message) < 1 or message[0] != 1 or not message[1:].startswith(BARRIER_PREFIX):
            return []
        nonce = message[1 + len(BARRIER_PREFIX):]
        waiter = self._barrier.marker_seen(nonce, self._monotonic())
        if waiter is None:
            return []
        identity, request_id = waiter
        return [reply(identity, request_id, done=broker_pb2.Done())]

    def flush(self) -> list[Output]:
        """Store the posts accepted since the last flush (one transaction); then their
        publications and acks in arrival order, or Failure UNAVAILABLE for each."""
        return self._posts.flush()

    @property
    def pending_posts(self) -> int:
        return len(self._posts)

    def tick(self) -> list[Output]:
        """Expire silent gateways (dropping their sessions) and stale barrier entries; now and then
        forget idempotency keys past their retention."""
        now = self._monotonic()
        cutoff = now - self._gateway_timeout_secs
        for identity in [g for g, seen in self._gateways.items() if seen < cutoff]:
            del self._gateways[identity]
            dropped = self.routing.drop_gateway(identity)
            log.warning("gateway %r silent for %.0fs: dropped %d sessions",
                        identity, self._gateway_timeout_secs, dropped)
        self._barrier.expire(now)
        if now >= self._next_key_purge:
            self._posts.forget_old_keys(self._key_retention_ms)
            self._next_key_purge = now + self._key_purge_every_secs
        return self._renew(now) if self.cluster is not None else []

    def _renew(self, now: float) -> list[Output]:
        """Cluster: renew our lease; hand over what another broker now wins; announce the live set."""
        outputs: list[Output] = []
        if self.cluster.due(now):
            releasing = self.cluster.renew(now)
            if releasing:
                outputs += self.flush()  # what we accepted for them is stored and acked by us first
                self.cluster.release(releasing)
                self._posts.forget(releasing)
        announcement = self.cluster.announce_due(now)
        if announcement is not None:
            outputs.append(announcement)
        return outputs

    def leave(self) -> list[Output]:
        """A graceful stop: store what was accepted, then hand every group over (cluster only)."""
        outputs = self.flush()
        if self.cluster is not None:
            outputs += self.cluster.leave()
        return outputs

    # sessions and membership --------------------------------------------------

    def _hello(self, identity: bytes, request_id: int, hello) -> list[Output]:
        fresh = identity not in self._gateways
        self._gateways[identity] = self._monotonic()
        if fresh:
            log.info("gateway %r (%s) connected", identity, hello.gateway_id)
        welcome = broker_pb2.Welcome(broker_id=self.broker_id, fresh=fresh)
        return [reply(identity, request_id, welcome=welcome)]

    def _open_session(self, identity: bytes, request_id: int, open_session) -> list[Output]:
        _check_id(open_session.session_id, "session_id")
        _check_id(open_session.account.id, "account.id")
        for group in open_session.group_ids:
            _check_id(group, "group_ids[]")
        session = self.routing.open_session(
            identity, open_session.session_id, open_session.account.id, open_session.group_ids
        )
        session.profile = open_session.account
        return [reply(identity, request_id, done=broker_pb2.Done())]

    def _close_session(self, identity: bytes, request_id: int, close_session) -> list[Output]:
        self.routing.close_session(identity, close_session.session_id)
        return [reply(identity, request_id, done=broker_pb2.Done())]

    def _membership_change(self, identity: bytes, request_id: int, change) -> list[Output]:
        _check_id(change.account_id, "account_id")
        _check_id(change.group.id, "group.id")
        if change.change_id == 0:
            raise BadRequest("membership_change needs its change_id (its number in commit order)")
        done = reply(identity, request_id, done=broker_pb2.Done())
        earlier = self.flush()  # posts accepted before the change are published before its event
        if not self.memberships.change(change.account_id, change.group.id, change.joined, change.change_id):
            return [*earlier, done]  # a repeat, or older than what we hold: nothing changes
        if change.joined:
            self.routing.join(change.account_id, change.group.id)
        else:
            self.routing.leave(change.account_id, change.group.id)
        event = broker_pb2.MembershipEvent(
            account_id=change.account_id, group=change.group, joined=change.joined, change_id=change.change_id
        )
        return [
            *earlier,
            Publish(CONTROL_TOPIC, event.SerializeToString()),
            done,
        ]

    def _membership_snapshot(self, identity: bytes, request_id: int, snapshot) -> list[Output]:
        for group in snapshot.groups:
            _check_id(group.group_id, "groups[].group_id")
            for entry in group.changes:
                _check_id(entry.account_id, "groups[].changes[].account_id")
                if entry.change_id == 0:
                    raise BadRequest("groups[].changes[].change_id must be set")
        done = self.memberships.snapshot_page(
            snapshot.snapshot_id,
            ((g.group_id, ((c.account_id, c.joined, c.change_id) for c in g.changes)) for g in snapshot.groups),
            first=snapshot.first, last=snapshot.last)
        if done:
            log.info("membership table loaded: %d memberships", self.memberships.membership_count())
        return [reply(identity, request_id, done=broker_pb2.Done())]

    def _sync(self, identity: bytes, request_id: int, sync) -> list[Output]:
        if not sync.nonce:
            raise BadRequest("sync needs a nonce")
        if self._barrier.sync_requested(sync.nonce, (identity, request_id), self._monotonic()):
            return [reply(identity, request_id, done=broker_pb2.Done())]
        return []

    def _cluster(self, identity: bytes, request_id: int, query) -> list[Output]:
        info = cluster_info([]) if self.cluster is None else self.cluster.info()
        return [reply(identity, request_id, cluster=info)]

    def _online(self, identity: bytes, request_id: int, online) -> list[Output]:
        _check_id(online.group_id, "group_id")
        members = sorted(self.routing.members_of(online.group_id) & self.memberships.members_of(online.group_id))
        return [reply(identity, request_id, online_members=broker_pb2.OnlineMembers(account_ids=members))]

    # messages -----------------------------------------------------------------

    def _post(self, identity: bytes, request_id: int, post) -> list[Output]:
        session = self.routing.session(identity, post.session_id)
        if session is None:
            raise UnknownSession(f"session {post.session_id!r} is not registered")
        if not self.memberships.complete:
            raise NotReady("the broker is still loading who is in which group; try again")
        if not self.memberships.is_member(session.account_id, post.group_id):
            raise NotMember(f"not a member of group {post.group_id!r}")
        self._check_text(post.text)
        _check_key(post.idempotency_key)
        self._check_owner(post.group_id)
        self._posts.add(PendingPost(identity, request_id, post.group_id, session.profile, post.text,
                                    post.idempotency_key))
        return []

    def _system_post(self, identity: bytes, request_id: int, post) -> list[Output]:
        _check_id(post.group_id, "group_id")
        name = post.sender_name
        if not name.strip() or len(name) > MAX_SENDER_NAME_CHARS or not name.isprintable():
            raise BadRequest(f"sender_name must be 1-{MAX_SENDER_NAME_CHARS} printable characters")
        self._check_text(post.text)
        _check_key(post.idempotency_key)
        self._check_owner(post.group_id)
        sender = broker_pb2.Person(id=SYSTEM_SENDER_ID, username=name, display_name=name)
        self._posts.add(PendingPost(identity, request_id, post.group_id, sender, post.text,
                                    post.idempotency_key, sender_key=f"{SYSTEM_SENDER_ID}:{name}"))
        return []

    def _history(self, identity: bytes, request_id: int, history) -> list[Output]:
        _check_id(history.group_id, "group_id")
        after_seq = history.after_seq if history.HasField("after_seq") else None
        for seq in (history.before_seq, after_seq or 0):
            if seq > MAX_SEQ:  # uint64 on the wire; the store holds signed 64-bit integers
                raise BadRequest(f"a seq is at most {MAX_SEQ}")
        if history.before_seq and after_seq is not None:
            raise BadRequest("give before_seq or after_seq, not both")
        limit = min(history.limit or DEFAULT_HISTORY_PAGE, self._max_history_page)
        stored, more = self._store.page(history.group_id, before_seq=history.before_seq,
                                        after_seq=after_seq, limit=limit)
        messages = broker_pb2.Messages(messages=[delivery_of(m) for m in stored], more=more)
        return [reply(identity, request_id, messages=messages)]

    def _group_states(self, identity: bytes, request_id: int, states) -> list[Output]:
        _check_id(states.account_id, "account_id")
        if len(states.group_ids) > MAX_GROUPS_PER_REQUEST:
            raise BadRequest(f"at most {MAX_GROUPS_PER_REQUEST} group_ids per request")
        for group in states.group_ids:
            _check_id(group, "group_ids[]")
        last = self._posts.last_seqs(states.group_ids)
        read = self._store.read_seqs(states.account_id, states.group_ids)
        groups = [broker_pb2.GroupState(group_id=g, last_seq=last[g], read_seq=read[g])
                  for g in dict.fromkeys(states.group_ids)]
        return [reply(identity, request_id, states=broker_pb2.States(groups=groups))]

    def _mark_read(self, identity: bytes, request_id: int, mark) -> list[Output]:
        _check_id(mark.account_id, "account_id")
        _check_id(mark.group_id, "group_id")
        last = self._posts.last_seqs([mark.group_id])[mark.group_id]
        self._store.mark_read(mark.account_id, mark.group_id, min(mark.seq, last))
        read = self._store.read_seqs(mark.account_id, [mark.group_id])[mark.group_id]
        state = broker_pb2.GroupState(group_id=mark.group_id, last_seq=last, read_seq=read)
        return [reply(identity, request_id, states=broker_pb2.States(groups=[state]))]

    def _check_owner(self, group_id: str) -> None:
        """Cluster: only the group's owner (or its rendezvous winner, which claims it) takes posts."""
        if self.cluster is None:
            return
        if self.cluster.leaving:
            self.redirected_at = self._monotonic()
            raise _moved(group_id, self.cluster.moved_to(group_id))
        where = self.cluster.ownership.route(group_id)
        if isinstance(where, MovedTo):
            if where.node is None:
                raise NotReady("this broker does not know the live brokers yet; try again")
            raise _moved(group_id, where.node)

    def _check_text(self, text: str) -> None:
        if len(text) > self._max_text_chars:
            raise BadRequest(f"text is over {self._max_text_chars} characters")
        if (char := forbidden_control(text)) is not None:
            raise BadRequest(describe_control("text", char))
        if is_invisible(text):  # blank, or only zero-width and other invisible characters
            raise BadRequest("text is blank")


def _moved(group_id: str, node: str | None) -> Moved:
    refusal = Moved(f"group {group_id!r} is served by another broker")
    refusal.moved_to = node or ""
    return refusal


def _check_key(key: str) -> None:
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS or forbidden_control(key) is not None:
        raise BadRequest(f"idempotency_key must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters "
                         "without control characters")


def _check_id(value: str, name: str) -> None:
    if not value or len(value) > MAX_ID_CHARS or "\0" in value:
        raise BadRequest(f"{name} must be 1-{MAX_ID_CHARS} characters without NUL")
