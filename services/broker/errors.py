"""Why the broker refuses a request, split by whose fault it is.

    BrokerError                 every refusal; carries a Failure.Code for the reply
    +-- BadRequest              the gateway's fault: unparsable or incomplete envelope
    +-- UnknownGateway          the gateway spoke before Hello (or was expired)
    +-- UnknownSession          the session is not registered here (e.g. broker restarted)
    +-- NotMember               the person's fault: posting to a group they are not in
    +-- StoreUnavailable        ours: the message store failed; nothing was stored or sent

Each maps to a Failure reply exactly once, in core.py; the broker never stops
serving because of what a peer sent, nor because the database hiccuped.

The gRPC Messages service (messages_service.py) has its own small hierarchy,
mapped once to a gRPC status at its servicer:

    MessagesError
    +-- InvalidArgument         -> INVALID_ARGUMENT  (the caller's fault: blank text, bad name)
    +-- GroupNotFound           -> NOT_FOUND         (membership does not know the group)
    +-- Unavailable             -> UNAVAILABLE       (store, broker loop or membership down; retryable)
"""

from chorus.wire.pb import broker_pb2

__all__ = [
    "BrokerError", "BadRequest", "UnknownGateway", "UnknownSession", "NotMember", "StoreUnavailable",
    "MessagesError", "InvalidArgument", "GroupNotFound", "Unavailable",
]

Code = broker_pb2.Failure.Code


class BrokerError(Exception):
    code: int = Code.CODE_UNSPECIFIED


class BadRequest(BrokerError):
    code = Code.BAD_REQUEST


class UnknownGateway(BrokerError):
    code = Code.UNKNOWN_GATEWAY


class UnknownSession(BrokerError):
    code = Code.UNKNOWN_SESSION


class NotMember(BrokerError):
    code = Code.NOT_MEMBER


class StoreUnavailable(BrokerError):
    """The message database could not be reached, is locked, or refused a write; retryable.

    The text is for the person at the other end: never SQL or driver text.
    """

    code = Code.UNAVAILABLE


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
