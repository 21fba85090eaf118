"""Why the broker refuses a request, split by whose fault it is.

The refusals are the broker protocol's own (chorus.wire.conversation): the
broker raises them and its clients receive them, one hierarchy on both ends,
each carrying the Failure.Code of the reply. Under the broker's names:

    BrokerError                 every refusal (chorus.wire.conversation.BrokerRefused)
    +-- BadRequest              the client's fault: unparsable or incomplete envelope (Malformed)
    +-- UnknownGateway          the client spoke before Hello (or was expired)
    +-- UnknownSession          the session is not registered here (e.g. broker restarted)
    +-- NotMember               the person's fault: posting to a group they are not in
    +-- StoreUnavailable        ours: the message store failed; nothing was stored or sent
    +-- NotReady                ours: just started, memberships not loaded yet; nothing was done
    +-- Forbidden               the client's fault: its role (CURVE key) may not ask that
    +-- Moved                   another broker owns the group (``moved_to``); nothing was done

Each maps to a Failure reply exactly once, in core.py; the broker never stops
serving because of what a peer sent, nor because the database hiccuped.

The gRPC Messages service (messages_service.py) has its own small hierarchy,
mapped once to a gRPC status at its servicer:

    MessagesError
    +-- InvalidArgument         -> INVALID_ARGUMENT  (the caller's fault: blank text, bad name)
    +-- GroupNotFound           -> NOT_FOUND         (membership does not know the group)
    +-- Unavailable             -> UNAVAILABLE       (store, broker loop or membership down; retryable)
"""

from chorus.wire.conversation import BrokerRefused as BrokerError
from chorus.wire.conversation import Malformed as BadRequest
from chorus.wire.conversation import (Forbidden, Moved, NotMember, NotReady, StoreUnavailable, UnknownGateway,
                                      UnknownSession)

__all__ = [
    "BrokerError", "BadRequest", "UnknownGateway", "UnknownSession", "NotMember", "StoreUnavailable", "NotReady", "Forbidden", "Moved",
    "MessagesError", "InvalidArgument", "GroupNotFound", "Unavailable",
]


class MessagesError(Exception):
    """Base of every error the Messages gRPC service reports on purpose."""


class InvalidArgument(MessagesError):
    pass


class GroupNotFound(MessagesError):
    def __init__(self, group_id: str) -> None:
        super().__init__(f"no group with id {group_id!r}")
        self.group_id = group_id


class Unavailable(MessagesError):
    pass
