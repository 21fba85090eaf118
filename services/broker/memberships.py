"""Who is in which group, as the membership service says: the broker's own check on every post.

Gateways register sessions with the groups they looked up, but the broker
does not take a session's word for it: a post is accepted only if this table,
fed by the membership service alone, has the account in the group.

The membership service feeds it two ways (from its notifier thread, over the
broker conversation):
- a SNAPSHOT of every membership, in pages sharing a snapshot id, whenever the
  broker does not know the notifier (first contact, broker restart). The table
  is ``complete`` once a snapshot's last page is in; before that, posts are
  refused as "not ready" (retryable), never decided on a partial table.
- CHANGES (join, leave) as they are committed, applied at once.

Invariants:
- A snapshot replaces the table only when its last page arrives; until then
  the previous table (if any) keeps answering.
- Changes that arrive while a snapshot is being received are applied to the
  current table AND replayed, in arrival order, on the snapshot's table after
  it is swapped in: a snapshot read before a change was committed cannot undo
  it. (Applying a join or a leave twice is harmless: they are set operations.)
- A snapshot's first page starts it over (whatever was in progress is
  dropped: its sender restarted or began again); a later page that is not of
  the snapshot in progress is ignored.
No sockets, no SQL: the core feeds it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

__all__ = ["MembershipTable"]


class MembershipTable:
    def __init__(self) -> None:
        self._members: dict[str, set[str]] = defaultdict(set)
        self.complete = False
        self._snapshot_id: int | None = None
        self._staged: dict[str, set[str]] = defaultdict(set)
        self._changes_meanwhile: list[tuple[str, str, bool]] = []

    # queries ----------------------------------------------------------------

    def is_member(self, account_id: str, group_id: str) -> bool:
        members = self._members.get(group_id)
        return members is not None and account_id in members

    def members_of(self, group_id: str) -> frozenset[str]:
        return frozenset(self._members.get(group_id, ()))

    def membership_count(self) -> int:
        return sum(len(m) for m in self._members.values())

    # changes ----------------------------------------------------------------

    def change(self, account_id: str, group_id: str, joined: bool) -> None:
        _apply(self._members, account_id, group_id, joined)
        if self._snapshot_id is not None:
            self._changes_meanwhile.append((account_id, group_id, joined))

    # snapshots --------------------------------------------------------------

    def snapshot_page(self, snapshot_id: int, groups: Iterable[tuple[str, Iterable[str]]], *,
                      first: bool, last: bool) -> bool:
        """Take one page of snapshot ``snapshot_id``; True when it completed the snapshot."""
        if first:
            self._snapshot_id = snapshot_id
            self._staged = defaultdict(set)
            self._changes_meanwhile = []
        elif snapshot_id != self._snapshot_id:
            return False  # not the snapshot in progress: overtaken by a newer first page
        for group_id, accounts in groups:
            self._staged[group_id].update(accounts)
        if not last:
            return False
        members = self._staged
        for account_id, group_id, joined in self._changes_meanwhile:
            _apply(members, account_id, group_id, joined)
        self._members = members
        self._staged = defaultdict(set)
        self._changes_meanwhile = []
        self._snapshot_id = None
        self.complete = True
        return True


def _apply(members: dict[str, set[str]], account_id: str, group_id: str, joined: bool) -> None:
    if joined:
        members[group_id].add(account_id)
        return
    accounts = members.get(group_id)
    if accounts is not None:
        accounts.discard(account_id)
        if not accounts:
            del members[group_id]
