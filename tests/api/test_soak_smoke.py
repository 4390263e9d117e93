"""The soak of `make bench` (bench/bench_soak.py), run briefly so CI proves it works.

The same code as the benchmark: a real anvil with a state file, every contract deployed,
`tealedger serve` with its follower, organisations of every audience made through the admin API,
then two clients send reads, writes and bad requests for 10 s while the node is stopped and
started again; afterwards the chain, the indexed database and the acknowledged writes must agree.
No timing is asserted.
"""

from __future__ import annotations

from bench.bench_soak import rows, soak
from tests._fixtures import needs_node

pytestmark = needs_node()


def test_soak_smoke() -> None:
    result = soak(seconds=10, workers=2, outage_s=2, pause=0.02)

    assert result.problems() == []
    classes = result.classes()
    assert classes["2xx"] and classes["4xx (bad requests)"]
    assert classes["503 during node restart"], "the node's restart happened under load"
    assert result.acknowledged(), "some harvest writes were recorded"
    assert result.consistency().startswith("ok (")
    table = rows(result, 2, 2)
    assert [r["value"] for r in table if "5xx other" in str(r["benchmark"])] == [0]
