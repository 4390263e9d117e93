"""Settling a day's lots in one request: commit many lots' farmer shares, or pay for many lots.

A factory makes, and a distributor buys, hundreds of lots a day; one request per lot would walk
each lot's lineage from the chain's logs and wait for each receipt. Here lineage and makers come
from the indexed tables (lot_source, lot_produced, harvest: the same split the chain's lineage
gives, tested), each lot is checked on its own (eth_call of the very call that will be sent),
and the checked calls are sent back to back with measured gas limits. Each lot gets its own
outcome: done, already done (idempotent: a re-sent request sends nothing twice), or refused
with the reason; one lot's refusal does not stop the others. A lot the index has not read yet
is refused as such (the follower catches up within seconds).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel
from pydantic import Field as PydField
from sqlalchemy import select
from sqlmodel import col
from web3.contract.contract import ContractFunction

from api.core.chain import loan_desk, org_sender
from api.core.errors import ROOTS, Conflict, detail_of
from api.core.ids import hex32, same_address, tx_hex
from api.core.indexed import indexed_read
from api.core.models import Organisation
from api.core.settings import ApiSettings
from api.core.types import MAX_FEN, Id32, Int
from api.supply_chain.settlement import settlement_desk
from chain.client import ChainClient
from chain.errors import ContractRevertError
from chain.sender import PendingTx, Sender
from chain.views import read_many, view
from indexer.models import Harvest, LotProduced, LotSource
from lending.loans.errors import translated
from lending.loans.gas import commit_gas, settle_gas
from lending.loans.settlement import FarmerShare, SettlementDesk, normalize_shares, shares_hash
from traceability import contracts

MAX_LOTS = 500


class LotsIn(BaseModel):
    """Lots whose farmer shares you commit (you made them)."""

    lots: Annotated[list[Id32], PydField(min_length=1, max_length=MAX_LOTS)]


class SaleLine(BaseModel):
    """One lot you pay for and the amount."""

    lot: Id32
    amount_fen: Int = PydField(gt=0, le=MAX_FEN)


class SalesIn(BaseModel):
    """Lots you pay for (you hold them or bought them first)."""

    sales: Annotated[list[SaleLine], PydField(min_length=1, max_length=MAX_LOTS)]


class Outcome(StrEnum):
    """What became of one lot of a batch."""

    DONE = "done"
    ALREADY = "already"
    REFUSED = "refused"


class LotOutcome(BaseModel):
    """One lot's outcome, with the reason when refused and the transaction when sent."""

    lot: str
    outcome: Outcome
    reason: str | None = None
    transaction: str | None = None


class BatchOut(BaseModel):
    """Every lot's outcome, in the order sent, and the counts."""

    done: int
    already: int
    refused: int
    lots: list[LotOutcome]


@dataclass(frozen=True)
class _Indexed:
    """A lot as the index has it: its maker, data hash and farmer shares."""

    maker: bytes
    data_hash: bytes
    shares: tuple[FarmerShare, ...]


def indexed_lots(settings: ApiSettings, lots: Sequence[bytes]) -> dict[bytes, _Indexed]:
    """Maker, data hash and farmer shares of each lot the index has read (absent otherwise)."""
    weights: dict[bytes, dict[bytes, int]] = defaultdict(lambda: defaultdict(int))
    makers: dict[bytes, tuple[bytes, bytes]] = {}
    wanted = list(dict.fromkeys(lots))
    with indexed_read(settings.database_url) as conn:
        made = select(LotProduced.lot, LotProduced.processor, LotProduced.data_hash)
        for lot, maker, data_hash in conn.execute(made.where(col(LotProduced.lot).in_(wanted))):
            makers[bytes(lot)] = (bytes(maker), bytes(data_hash))
        source = select(LotSource.lot, LotSource.farmer, LotSource.grams)
        for lot, farmer, grams in conn.execute(source.where(col(LotSource.lot).in_(wanted))):
            weights[bytes(lot)][bytes(farmer)] += int(grams)
        leaf = select(Harvest.lot, Harvest.cooperative, Harvest.data_hash, Harvest.farmer,
                      Harvest.grams)  # fmt: skip
        for lot, coop, data_hash, farmer, grams in conn.execute(
            leaf.where(col(Harvest.lot).in_(wanted))
        ):
            makers[bytes(lot)] = (bytes(coop), bytes(data_hash))
            weights[bytes(lot)][bytes(farmer)] += int(grams)
    return {
        lot: _Indexed(maker, data_hash, normalize_shares(dict(weights[lot])))
        for lot, (maker, data_hash) in makers.items()
        if weights.get(lot)
    }


def _refused(lot: bytes, reason: str) -> LotOutcome:
    """A refused lot and why (nothing was sent for it unless the reason says it failed on chain)."""
    return LotOutcome(lot=hex32(lot), outcome=Outcome.REFUSED, reason=reason)


def _send_all(
    sender: Sender, planned: list[tuple[bytes, ContractFunction, int | None]]
) -> list[LotOutcome]:
    """Send the checked calls back to back (on a node that mines on demand, mined together in
    blocks of at most the gas target), then read their receipts together (a failure on chain
    refuses only its lot)."""
    if not planned:
        return []
    fees = sender.fees()

    def send(
        part: Sequence[tuple[bytes, ContractFunction, int | None]],
    ) -> list[tuple[bytes, PendingTx]]:
        return [(lot, sender.send(fn, gas=gas, fees=fees)) for lot, fn, gas in part]

    bounds = [gas for _, _, gas in planned if gas is not None]
    # A call left to the node's estimate cannot share a block: it would not see those ahead.
    bounded = len(bounds) == len(planned)
    pending = sender.packed(planned, max(bounds), send) if bounded else send(planned)
    out = []
    for (lot, _), settled in zip(pending, sender.settle([tx for _, tx in pending]), strict=True):
        if isinstance(settled, ContractRevertError):
            out.append(_refused(lot, f"reverted: {settled}"))
        elif isinstance(settled, Exception):
            out.append(_refused(lot, f"failed on chain: {settled}"))
        else:
            out.append(LotOutcome(lot=hex32(lot), outcome=Outcome.DONE,
                                  transaction=tx_hex(settled)))  # fmt: skip
    return out


def _taken(
    chain: ChainClient,
    org: Organisation,
    planned: list[tuple[bytes, ContractFunction, int | None]],
    outcomes: dict[bytes, LotOutcome],
) -> list[tuple[bytes, ContractFunction, int | None]]:
    """The planned calls the chain would take from you (their eth_calls in one batch); each
    other one's lot refused in `outcomes` with the contract's reason."""
    errors = chain.check_calls([fn for _, fn, _ in planned], org.chain_address)
    taken = []
    for item, error in zip(planned, errors, strict=True):
        if error is None:
            taken.append(item)
        else:
            outcomes[item[0]] = _refused(item[0], detail_of(translated(error)))
    return taken


def _batch(ordered: list[bytes], outcomes: dict[bytes, LotOutcome]) -> BatchOut:
    """The outcomes in request order, with their counts."""
    lots = [outcomes[lot] for lot in dict.fromkeys(ordered)]
    count = {o: sum(1 for x in lots if x.outcome is o) for o in Outcome}
    return BatchOut(done=count[Outcome.DONE], already=count[Outcome.ALREADY],
                    refused=count[Outcome.REFUSED], lots=lots)  # fmt: skip


def commit_lots(
    chain: ChainClient, settings: ApiSettings, org: Organisation, body: LotsIn
) -> BatchOut:
    """Commit the indexed lineage shares of lots you made; a lot already committed with the same
    shares is `already`, one made by another or not indexed yet is refused."""
    desk = settlement_desk(chain)
    found = indexed_lots(settings, body.lots)
    outcomes: dict[bytes, LotOutcome] = {}
    planned: list[tuple[bytes, ContractFunction, int | None]] = []
    for lot in dict.fromkeys(body.lots):
        try:
            outcomes[lot] = _plan_commit(desk, org, lot, found.get(lot), planned)
        except ROOTS as exc:
            outcomes[lot] = _refused(lot, detail_of(exc))
    planned = _taken(chain, org, planned, outcomes)
    for result in _send_all(org_sender(chain, settings, org), planned):
        outcomes[bytes.fromhex(result.lot[2:])] = result
    return _batch(body.lots, outcomes)


def _plan_commit(desk: SettlementDesk, org: Organisation, lot: bytes, known: _Indexed | None,
                 planned: list) -> LotOutcome:  # fmt: skip
    """Check one lot's commit (but for its eth_call) and add it to `planned`; its outcome if
    nothing is to be sent."""
    if known is None:
        raise Conflict("the index has not read this lot (yet): try again in a moment")
    if not same_address("0x" + known.maker.hex(), org.chain_address):
        raise Conflict(f"only the lot's maker (0x{known.maker.hex()}) commits its shares")
    stored = desk.commitment(lot)
    if stored.shares_hash == shares_hash(known.shares):
        return LotOutcome(lot=hex32(lot), outcome=Outcome.ALREADY)
    fn = desk.commit_shares_call(lot, known.data_hash, known.shares)
    planned.append((lot, fn, commit_gas(len(known.shares))))
    return LotOutcome(lot=hex32(lot), outcome=Outcome.REFUSED, reason="not sent")


def settle_lots(
    chain: ChainClient, settings: ApiSettings, org: Organisation, body: SalesIn
) -> BatchOut:
    """Pay for lots you hold or bought first, each split by its committed shares (which must
    match the indexed lineage); a lot with a sale settled already is `already`. The allowance is
    exactly what the lots to pay cost, and none is left behind."""
    desk = settlement_desk(chain)
    lots = [s.lot for s in body.sales]
    if len(set(lots)) != len(lots):
        raise Conflict("a lot appears twice in the request: one payment per lot")
    found = indexed_lots(settings, lots)
    outcomes: dict[bytes, LotOutcome] = {}
    to_pay: list[SaleLine] = []
    for sale in body.sales:
        try:
            outcome = _may_settle(desk, org, sale.lot, found.get(sale.lot))
        except ROOTS as exc:
            outcome = _refused(sale.lot, detail_of(exc))
        if outcome is None:
            to_pay.append(sale)
        else:
            outcomes[sale.lot] = outcome
    if to_pay:
        _pay(chain, settings, org, desk, to_pay, found, outcomes)
    return _batch(lots, outcomes)


def _may_settle(
    desk: SettlementDesk, org: Organisation, lot: bytes, known: _Indexed | None
) -> LotOutcome | None:
    """None if the lot is to be paid; its outcome (already paid) otherwise; refusals raise."""
    if known is None:
        raise Conflict("the index has not read this lot (yet): try again in a moment")
    trace = contracts.deployed(desk.client, contracts.TEA_TRACE)
    reads = [(trace.address, view(trace.abi, name), (lot,)) for name in ("lot", "boughtBy")]
    (record,), (bought,) = read_many(desk.client.w3, reads)
    holder = record[0]
    if not any(same_address(org.chain_address, who) for who in (holder, bought)):
        raise Conflict("only the lot's holder or first buyer pays for it")
    stored = desk.commitment(lot)
    if stored.sales:
        return LotOutcome(lot=hex32(lot), outcome=Outcome.ALREADY)
    if stored.shares_hash != shares_hash(known.shares):
        raise Conflict("the lot's committed shares are missing or differ from its lineage")
    return None


def _pay(chain: ChainClient, settings: ApiSettings, org: Organisation, desk: SettlementDesk,
         to_pay: list[SaleLine], found: dict[bytes, _Indexed],
         outcomes: dict[bytes, LotOutcome]) -> None:  # fmt: skip
    """Approve what the lots cost, check each payment by eth_call, send them; no allowance left."""
    total = sum(s.amount_fen for s in to_pay)
    balance = int(desk.token.functions.balanceOf(org.chain_address).call())
    if balance < total:
        raise Conflict(f"your eCNY balance is {balance} fen, below the {total} fen of these lots")
    loans = loan_desk(chain)
    sender = org_sender(chain, settings, org)
    approve = desk.token.functions.approve
    sender.transact(approve(desk.contract.address, total))  # the checks below spend from it
    try:
        calls = [(s.lot, desk.settle_sale_call(s.lot, s.amount_fen, found[s.lot].shares), None)
                 for s in to_pay]  # fmt: skip
        taken = _taken(chain, org, calls, outcomes)
        farmers = {x.farmer_id for lot, _, _ in taken for x in found[lot].shares}
        open_loans = dict(zip(farmers, loans.active_loans_of(list(farmers)), strict=True))
        planned: list[tuple[bytes, ContractFunction, int | None]] = []
        for lot, fn, _ in taken:
            shares = found[lot].shares
            # A farmer with an open loan (of any season) takes the costlier repaying path.
            owing = sum(1 for x in shares if open_loans[x.farmer_id] is not None)
            planned.append((lot, fn, settle_gas(len(shares), owing)))
        for result in _send_all(sender, planned):
            outcomes[bytes.fromhex(result.lot[2:])] = result
    finally:
        if int(desk.token.functions.allowance(org.chain_address, desk.contract.address).call()):
            sender.transact(approve(desk.contract.address, 0))  # leave no allowance behind
