"""A processor's or distributor's lots, from the indexed chain: what it made and what it bought
first (the sales whose proceeds it settles to the farmers), newest first."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select

from api.core.ids import hex32
from api.core.indexed import indexed_read
from api.core.models import Organisation
from api.core.settings import ApiSettings
from indexer.models import LotProduced, Sale


class MadeLot(BaseModel):
    """A made-tea lot the organisation produced."""

    lot: str
    grams: int
    block: int


class BoughtLot(BaseModel):
    """A lot the organisation bought first: its price is the farmers' income."""

    lot: str
    price_fen: int
    bought_at: int


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
