"""Who is in which group, as the membership service says: the broker's own check on every post.

Gateways register sessions with the groups they looked up, but the broker
does not take a session's word for it: a post is accepted only if this table,
fed by the membership service alone, has the account in the group.

The membership service feeds it two ways (from its notifiers' threads, over
the broker conversation; several membership replicas each feed it):
- CHANGES (join, leave) as they are committed, each with its number: the
  database numbers a group's changes in commit order (membership/storage.py).
- a SNAPSHOT, in pages sharing a snapshot id, whenever the broker does not
  know a notifier (first contact, broker restart): every (account, group)
  pair's newest change, left pairs included.

Invariants:
- Per (account, group), the table holds the newest change it has heard of
  (its number, and joined or not), and only a higher number replaces it. A
  change and a snapshot entry are the same kind of fact, merged the same
  way, so the table ends in the database's committed state whatever the
  order of arrival: a replica's late change, a repeat, a snapshot page read
  before or after a change, two replicas' snapshots interleaved.
- Left pairs stay as tombstones (a number and "not in"): forgetting one would
  let an older join that is still on its way win.
- The table is ``complete`` once one snapshot has arrived whole, from its
  first page to its last (one sender sends a snapshot's pages in order, each
  after the previous was answered); before that, posts are refused as "not
  ready" (retryable), never decided on a partial table. Pages of any
  snapshot are merged as they come: every entry is true as of its number.
No sockets, no SQL: the core feeds it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["MembershipTable"]


class MembershipTable:
    def __init__(self) -> None:
        self._newest: dict[tuple[str, str], tuple[int, bool]] = {}  # (group, account) -> (number, joined)
        self._members: dict[str, set[str]] = {}  # group -> accounts in it: the joined entries above
        self.complete = False
        self._snapshots_begun: set[int] = set()  # snapshots whose first page came; only until complete

    # queries ----------------------------------------------------------------

    def is_member(self, account_id: str, group_id: str) -> bool:
        members = self._members.get(group_id)
        return members is not None and account_id in members

    def members_of(self, group_id: str) -> frozenset[str]:
        return frozenset(self._members.get(group_id, ()))

    def membership_count(self) -> int:
        return sum(len(m) for m in self._members.values())

    # changes ----------------------------------------------------------------

    def change(self, account_id: str, group_id: str, joined: bool, change_id: int) -> bool:
        """Take change ``change_id`` of the pair if it is newer than what the table holds;
        True when it was (so the pair may now read differently), False for a repeat or an
        older change, which changes nothing."""
        known = self._newest.get((group_id, account_id))
        if known is not None and known[0] >= change_id:
            return False
        self._newest[(group_id, account_id)] = (change_id, joined)
        if joined:
            self._members.setdefault(group_id, set()).add(account_id)
        else:
            accounts = self._members.get(group_id)
            if accounts is not None:
                accounts.discard(account_id)
                if not accounts:
                    del self._members[group_id]
        return True

    # snapshots --------------------------------------------------------------

    def snapshot_page(self, snapshot_id: int, groups: Iterable[tuple[str, Iterable[tuple[str, bool, int]]]], *,
                      first: bool, last: bool) -> bool:
        """Merge one page of snapshot ``snapshot_id``: per group, (account, joined, number)
        entries. True when it completed the table (the last page of a snapshot whose first
        page came, while the table was not yet complete)."""
        for group_id, entries in groups:
            for account_id, joined, change_id in entries:
                self.change(account_id, group_id, joined, change_id)
        if self.complete:
            return False
        if first:
            self._snapshots_begun.add(snapshot_id)
        if not last or snapshot_id not in self._snapshots_begun:
            return False
        self.complete = True
        self._snapshots_begun.clear()
        return True
