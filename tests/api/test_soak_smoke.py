"""The soak of `make bench` (bench/bench_soak.py), run briefly so CI proves it works.

The same code as the benchmark: a real anvil with a state file, every contract deployed,
`tealedger serve` with its follower, organisations of every audience made through the admin API,
then two clients send reads, writes and bad requests for 10 s while the node is stopped and
started again; afterwards the chain, the indexed database and the acknowledged writes must agree.
No timing is asserted.
"""

from __future__ import annotations

from collections import Counter

from bench.bench_soak import Sample, SoakResult, Tally, Write, rows, soak
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


# ------------------------------------------------------------------------- the checks themselves

LOT_A, LOT_B, LOT_C = b"\xaa" * 32, b"\xbb" * 32, b"\xcc" * 32
DOWN, UP = 100.0, 105.0


def _result(
    writes: list[Write], chain: list[bytes], indexed: list[bytes], samples: tuple[Sample, ...] = ()
) -> SoakResult:
    tally = Tally(samples=list(samples), writes=writes)
    return SoakResult(30.0, tally, (DOWN, UP), 1.0, Counter(chain), indexed)


def test_checks_pass_when_chain_index_and_answers_agree() -> None:
    writes = [Write((LOT_A, LOT_B), 200, (LOT_A, LOT_B)), Write((LOT_C,), 503)]
    samples = (Sample("harvest write", "write", 503, DOWN + 1, DOWN + 1.1),)
    result = _result(writes, [LOT_A, LOT_B], [LOT_B, LOT_A], samples)
    assert result.problems() == []
    assert result.consistency() == "ok (2/2/2)"
    assert result.classes() == {"503 during node restart": 1}


def test_checks_catch_a_refused_write_that_landed_and_a_lost_one() -> None:
    writes = [Write((LOT_A,), 200, (LOT_A,)), Write((LOT_B,), 503)]
    found = _result(writes, [LOT_B], [LOT_B]).problems()
    assert "1 acknowledged lots are not on chain" in found
    assert "1 lots of refused writes are on chain" in found
    assert "1 lots on chain were never acknowledged" in found


def test_a_write_in_doubt_may_land_once_but_not_twice() -> None:
    # sent, then the node went: the service answered 503 with the transactions in doubt
    writes = [Write((LOT_A,), 200, (LOT_A,)), Write((LOT_B,), 503, in_doubt=True)]
    assert _result(writes, [LOT_A, LOT_B], [LOT_A, LOT_B]).problems() == []
    assert _result(writes, [LOT_A], [LOT_A]).problems() == []
    twice = _result(writes, [LOT_A, LOT_B, LOT_B], [LOT_A, LOT_B]).problems()
    assert "1 lots recorded on chain more than once" in twice


def test_checks_catch_lots_recorded_twice_or_not_indexed() -> None:
    writes = [Write((LOT_A, LOT_B), 200, (LOT_A, LOT_B))]
    found = _result(writes, [LOT_A, LOT_A, LOT_B], [LOT_A]).problems()
    assert "1 lots recorded on chain more than once" in found
    assert "1 lots on chain are not indexed" in found
    assert _result(writes, [LOT_A, LOT_B], [LOT_A, LOT_B, LOT_B]).consistency().startswith("FAIL")


def test_only_a_503_while_the_node_is_away_is_acceptable() -> None:
    samples = [
        Sample("coop lots", "good", 503, UP + 30, UP + 30.1),  # long after the restart
        Sample("coop lots", "good", 500, DOWN + 1, DOWN + 1.1),
        Sample("healthz", "good", 0, 1.0, 1.1, "ReadError"),
        Sample("bad: no key", "bad", 200, 1.0, 1.1),
        Sample("coop lots", "good", 403, 1.0, 1.1),
    ]
    result = _result([], [], [], tuple(samples))
    assert result.classes() == {
        "5xx other": 3, "bad request not refused": 1, "4xx on a good request": 1
    }  # fmt: skip
    assert result.unexpected()["healthz: ReadError"] == 1
    assert result.consistency() == "ok (0/0/0)"  # answers are not the ledger's consistency
    assert result.problems()  # but they fail the soak
