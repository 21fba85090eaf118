"""Which membership events are news: per (account, group), the newest change number applied here.

Every broker of a cluster publishes each membership change it applies, so a
gateway hears one change several times and, from different brokers, in
interleaved orders (each broker's own events for a pair come in increasing
number: it publishes only changes newer than what it holds). The database
numbers a group's changes in commit order (broker_pb2.MembershipChange), so
applying an event only when its number is higher than the last one applied
for its pair makes repeats and late older changes no-ops, and pages end in
the committed state.

Memory policy: numbers are kept only for accounts with a live session on this
gateway (an event for anyone else changes nothing here), and an account's are
dropped when its last session goes. A page opened later starts from the
groups the membership service lists for it then.
No I/O: the hub asks and records.
"""

from __future__ import annotations

__all__ = ["ChangeOrder"]


class ChangeOrder:
    def __init__(self) -> None:
        self._applied: dict[str, dict[str, int]] = {}  # account -> group -> newest number applied

    def is_news(self, account_id: str, group_id: str, change_id: int) -> bool:
        """Whether change ``change_id`` is newer than the last applied for the pair."""
        return change_id > self._applied.get(account_id, {}).get(group_id, 0)

    def applied(self, account_id: str, group_id: str, change_id: int) -> None:
        """Change ``change_id`` of the pair now shows on this gateway's sessions."""
        groups = self._applied.setdefault(account_id, {})
        groups[group_id] = max(change_id, groups.get(group_id, 0))

    def forget(self, account_id: str) -> None:
        """The account has no live session here any more."""
        self._applied.pop(account_id, None)

    def accounts(self) -> int:
        return len(self._applied)
