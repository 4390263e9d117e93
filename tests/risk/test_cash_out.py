"""Cash-out through a merchant: loan money paid to a merchant that comes back to the borrower's
side, found through ordinary wallets in time order; legitimate spending is not."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from risk.rules import DAY
from risk.scan import context, find
from tests.risk.world import World, wallet

LENDER, MERCHANT, OTHER_MERCHANT, COOP = wallet(1), wallet(2), wallet(3), wallet(4)
OWN, RELATIVE, FRONT_1, FRONT_2, STRANGER = (
    wallet(20),
    wallet(21),
    wallet(22),
    wallet(23),
    wallet(24),
)


def _season(world: World, disbursed: int = 80_000) -> bytes:
    """One farmer, one loan with the cooperative as agent, a payment to a merchant."""
    world.merchant(MERCHANT)
    world.merchant(OTHER_MERCHANT)
    farmer = world.farmer(1, OWN)
    world.pay(OWN, RELATIVE, 5_000)  # the farmer dealt with a relative before the loan
    escrow = world.loan(1, farmer, OWN, LENDER, agent=COOP)
    world.pay(escrow, MERCHANT, disbursed)
    return escrow


def _cash_outs(world: World) -> list:
    world.seal()
    with world.engine.connect() as conn:
        return list(find(context(conn), ["cash_out"]))


@pytest.mark.parametrize(
    ("hops", "share", "delay_days"),
    [((OWN,), 9, 1), ((FRONT_1, OWN), 3, 6), ((FRONT_1, FRONT_2, RELATIVE), 5, 9),
     ((STRANGER, FRONT_1, COOP), 2, 25)],
)  # fmt: skip
def test_money_back_to_the_borrower_side_is_found(
    engine: Engine, hops: tuple[bytes, ...], share: int, delay_days: int
) -> None:
    world = World(engine)
    _season(world)
    amount = 80_000 * share // 10
    previous = MERCHANT
    for hop in hops:
        world.pay(previous, hop, amount, after=delay_days * DAY // len(hops))
        previous = hop
    (found,) = _cash_outs(world)
    assert found.subject == "loan:1" and found.severity == "high"
    assert [h.recipient for h in found.evidence.path] == ["0x" + w.hex() for w in (MERCHANT, *hops)]
    assert found.evidence.amounts_fen == {"disbursed": 80_000, "returned": amount}
    assert "贷款 #1" in found.explanation_zh and "loan #1" in found.explanation_en


def test_legitimate_spending_and_near_misses_are_not(engine: Engine) -> None:
    world = World(engine)
    escrow = _season(world)
    world.pay(MERCHANT, OTHER_MERCHANT, 60_000)  # the merchant buys stock
    world.pay(OWN, escrow, 30_000)  # the farmer repays
    world.pay(escrow, LENDER, 30_000)
    world.pay(MERCHANT, FRONT_1, 7_000)  # under a tenth of the payment
    world.pay(FRONT_1, OWN, 7_000)
    world.pay(MERCHANT, FRONT_2, 40_000, after=31 * DAY)  # too late
    world.pay(FRONT_2, OWN, 40_000)
    world.pay(MERCHANT, STRANGER, 40_000)
    world.pay(STRANGER, wallet(30), 40_000)  # out of reach: four ordinary hops from the farmer
    world.pay(wallet(30), wallet(31), 40_000)
    world.pay(wallet(31), wallet(32), 40_000)
    world.pay(wallet(32), OWN, 40_000)
    assert _cash_outs(world) == []


def test_money_cannot_leave_before_it_arrived(engine: Engine) -> None:
    world = World(engine)
    world.merchant(MERCHANT)
    farmer = world.farmer(1, OWN)
    escrow = world.loan(1, farmer, OWN, LENDER)
    world.pay(escrow, MERCHANT, 80_000)
    world.pay(FRONT_1, OWN, 50_000)  # before the merchant paid the front: not the loan's money
    world.pay(MERCHANT, FRONT_1, 50_000)
    assert _cash_outs(world) == []


def test_a_later_scan_finds_the_same_key(engine: Engine) -> None:
    world = World(engine)
    _season(world)
    world.pay(MERCHANT, OWN, 40_000)
    first = _cash_outs(world)
    world.pay(LENDER, wallet(99), 1)  # the chain moves on
    assert [f.key for f in _cash_outs(world)] == [f.key for f in first]
