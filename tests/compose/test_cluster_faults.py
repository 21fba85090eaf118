"""Faults of a broker on the cluster (compose.cluster.yaml: three brokers sharing the groups), with
the fault suite's traffic and checks (tests/compose/test_faults.py, tests/faultload.py): a broker's
groups move to the others and back when it returns; docs/reliability.md, "Faults on a cluster of brokers".

Its stack lives for this module only, so it is gone before the other compose tests start theirs
(two stacks at once are more than a 2-core machine serves within the health checks' deadlines).
"""

from __future__ import annotations

import pytest
from faultload import Crowd
from composefaults import (DOWN_SECS, GROUPS, PEOPLE, PER_PERSON, RATE, RECOVERY_LIMIT_SECS, RUNS, SENDERS, kill_9,
                           report, stop_for)

pytestmark = pytest.mark.compose

CLUSTER_FAULTS = {
    "cluster: kill -9 broker-2": lambda stack: kill_9(stack, "broker-2"),
    f"cluster: stop broker-3 {DOWN_SECS:g} s": lambda stack: stop_for(stack, "broker-3", DOWN_SECS),
}


@pytest.mark.parametrize("fault", list(CLUSTER_FAULTS))
async def test_a_brokers_fault_on_a_cluster_loses_nothing_acknowledged(fault, compose_cluster_stack,
                                                                        compose_cluster_api):
    stack = compose_cluster_stack
    crowd = await Crowd.gather(compose_cluster_api, stack.ws_url("http"),
                               people=PEOPLE, groups=GROUPS, per_person=PER_PERSON)
    for _ in range(RUNS):
        tally = await crowd.run(fault, CLUSTER_FAULTS[fault](stack), rate=RATE, senders=SENDERS,
                                before_secs=2.0, after_secs=3.0, recovery_limit_secs=RECOVERY_LIMIT_SECS)
        report(tally.row())
        assert tally.acked > 0, tally
        assert tally.lost == 0, f"acknowledged messages lost: {tally}"
        assert (tally.missing_on_pages, tally.extra_on_pages) == (0, 0), f"pages differ from history: {tally}"
        # No refused post on a planned stop alone is held by tests/test_cluster.py; here the stopped
        # broker also comes back 4 s later, and while it rejoins one post without an idempotency
        # key was seen refused ("unavailable": nothing stored, the sender knows).
        for name in ("webgate-a", "webgate-b", "http"):
            stack.wait_healthy(name)
