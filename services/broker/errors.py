"""Why the broker refuses a gateway's request.

    BrokerError                 every refusal; carries a Failure.Code for the reply
    +-- BadRequest              the gateway's fault: unparsable or incomplete envelope
    +-- UnknownGateway          the gateway spoke before Hello (or was expired)
    +-- UnknownSession          the session is not registered here (e.g. broker restarted)
    +-- NotMember               the person's fault: posting to a group they are not in

Each maps to a Failure reply exactly once, in core.py; the broker never stops
serving because of what a peer sent.
"""

from chorus.pb import broker_pb2

__all__ = ["BrokerError", "BadRequest", "UnknownGateway", "UnknownSession", "NotMember"]

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
