"""Who a message is from, where more than one party must tell: the broker stamps backend posts
with this sender id, and the gateways mark such messages ``"system": true`` for the page, which
shows them as a bot (never as a person, whatever name the backend gave).
"""

__all__ = ["SYSTEM_SENDER_ID"]

SYSTEM_SENDER_ID = "system"  # no account id looks like this (they are "u_" + random)
