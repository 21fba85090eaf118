"""The contracts every service and the page agree on, and nothing else: no I/O, no service code.

    chorus.wire.pb         generated from proto/ (gRPC services and the broker's envelopes)
    chorus.wire.topics     the broker's PUB/SUB topic names
    chorus.wire.limits     bounds more than one party checks (id lengths, seqs, text, pages)
    chorus.wire.endpoints  where each service listens by default
    chorus.wire.senders    the sender id of backends' system posts

Services import this package and chorus.common, never each other
(pyproject.toml's import-linter contracts, checked by tests/test_layers.py).
"""
