"""Bounds that more than one party checks, so each is written once.

The broker, the gateways and the membership service all refuse ids longer
than ``MAX_ID_CHARS``; the page learns the text and page limits from the
gateway's /api/config instead of keeping copies.
"""

__all__ = ["MAX_ID_CHARS", "MAX_SEQ", "DEFAULT_MAX_TEXT_CHARS", "DEFAULT_HISTORY_PAGE",
           "MAX_HISTORY_PAGE", "MAX_GROUPS_PER_REQUEST", "MAX_IDEMPOTENCY_KEY_CHARS"]

MAX_ID_CHARS = 64                # account, group and session ids
MAX_SEQ = 2**63 - 1              # seqs are uint64 on the wire, signed 64-bit in the stores
DEFAULT_MAX_TEXT_CHARS = 4000    # a message's text; the broker and gateways take --max-text-chars
DEFAULT_HISTORY_PAGE = 50        # messages in a history page when no limit is asked for
MAX_HISTORY_PAGE = 100           # larger limits are capped; "more" says the rest exists
MAX_GROUPS_PER_REQUEST = 1000    # group ids in one broker request (above any account's groups)
MAX_IDEMPOTENCY_KEY_CHARS = 64   # a send's client-chosen key
