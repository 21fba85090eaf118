"""Faults with traffic flowing, on the compose stack: nothing acknowledged is lost,
every page ends showing exactly the stored history, and posting works again by
itself within RECOVERY_LIMIT_SECS.

CI runs a short version (one run per fault, light traffic). The full run, whose
figures are in docs/reliability.md:

    CHORUS_FAULT_FULL=1 CHORUS_FAULT_REPORT=/tmp/faults.jsonl ./run-tests tests/compose/test_faults.py
    .venv/bin/python -c "import sys, json; sys.path[:0] = ['tests']; \\
        import faultload; print(faultload.table([json.loads(l) for l in open('/tmp/faults.jsonl')]))"
"""

from __future__ import annotations

import pytest
from composefaults import (DOWN_SECS, GROUPS, PEOPLE, PER_PERSON, RATE, RECOVERY_LIMIT_SECS, RUNS, SENDERS, kill_9,
                           report, stop_for)
from faultload import Crowd

pytestmark = pytest.mark.compose

FAULTS = {
    "kill -9 broker": lambda stack: kill_9(stack, "broker"),
    "kill -9 webgate": lambda stack: kill_9(stack, "webgate-a"),
    f"stop membership {DOWN_SECS:g} s": lambda stack: stop_for(stack, "membership", DOWN_SECS),
    f"stop auth {DOWN_SECS:g} s": lambda stack: stop_for(stack, "auth", DOWN_SECS),
    f"stop database {DOWN_SECS:g} s": lambda stack: stop_for(stack, "postgres", DOWN_SECS),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_fault_loses_nothing_acknowledged_and_pages_match_history(fault, compose_stack, compose_api):
    crowd = await Crowd.gather(compose_api, compose_stack.ws_url("http"),
                               people=PEOPLE, groups=GROUPS, per_person=PER_PERSON)
    for _ in range(RUNS):
        tally = await crowd.run(fault, FAULTS[fault](compose_stack), rate=RATE, senders=SENDERS,
                                before_secs=2.0, after_secs=3.0, recovery_limit_secs=RECOVERY_LIMIT_SECS)
        report(tally.row())
        assert tally.acked > 0, tally
        assert tally.lost == 0, f"acknowledged messages lost: {tally}"
        assert (tally.missing_on_pages, tally.extra_on_pages) == (0, 0), f"pages differ from history: {tally}"
        for name in ("webgate-a", "webgate-b", "http"):
            compose_stack.wait_healthy(name)
