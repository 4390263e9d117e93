"""A processor's or distributor's lots, from the indexed chain: what it made and what it bought
first (the sales whose proceeds it settles to the farmers), newest first."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import select

from api.core.ids import hex32
from api.core.indexed import indexed_read
from api.core.models import Organisation
from api.core.settings import ApiSettings
from api.supply_chain.settlement import settlement_desk
from chain.client import ChainClient
from indexer.models import LotProduced, Sale


class Settlement(StrEnum):
    """Where a lot stands in SaleSettlement."""

    OPEN = "open"  # no shares committed yet
    COMMITTED = "committed"  # shares committed, no sale settled
    SETTLED = "settled"  # at least one sale settled


class MadeLot(BaseModel):
    """A made-tea lot the organisation produced."""

    lot: str
    grams: int
    block: int
    settlement: Settlement | None = None


class BoughtLot(BaseModel):
    """A lot the organisation bought first: its price is the farmers' income."""

    lot: str
    price_fen: int
    bought_at: int
    settlement: Settlement | None = None


class MyLots(BaseModel):
    """The organisation's lots as far as the index has read the chain."""

    made: list[MadeLot]
    bought: list[BoughtLot]


def my_lots(settings: ApiSettings, org: Organisation, limit: int = 50) -> MyLots:
    """Lots the organisation made and lots it bought first, newest first (`limit` of each)."""
    me = bytes.fromhex(org.chain_address[2:])
    made_q = (
        select(LotProduced.lot, LotProduced.grams, LotProduced.block_number)
        .where(LotProduced.processor == me)
        .order_by(LotProduced.block_number.desc())  # type: ignore[attr-defined]
        .limit(limit)
    )
    bought_q = (
        select(Sale.lot, Sale.price_fen, Sale.block_timestamp)
        .where(Sale.buyer == me, Sale.attributed)
        .order_by(Sale.block_number.desc())  # type: ignore[attr-defined]
        .limit(limit)
    )
    with indexed_read(settings.database_url) as conn:
        made = [MadeLot(lot=hex32(r[0]), grams=r[1], block=r[2]) for r in conn.execute(made_q)]
        bought = [
            BoughtLot(lot=hex32(r[0]), price_fen=r[1], bought_at=r[2])
            for r in conn.execute(bought_q)
        ]
    return MyLots(made=made, bought=bought)


def with_settlement(chain: ChainClient, lots: MyLots) -> MyLots:
    """The lots with their SaleSettlement state (one read per lot shown)."""
    desk = settlement_desk(chain)
    for item in [*lots.made, *lots.bought]:
        stored = desk.commitment(bytes.fromhex(item.lot[2:]))
        item.settlement = (
            Settlement.SETTLED if stored.sales
            else Settlement.COMMITTED if stored.shares_hash != bytes(32)
            else Settlement.OPEN
        )  # fmt: skip
    return lots
