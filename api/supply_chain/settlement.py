"""A sold lot's money: its farmer shares (from lineage), their commitment, settling its sales.

The service computes a lot's shares by walking its lineage in TeaTrace's events (fresh-leaf
grams per farmer, `traceability.lineage.LineageReader.farmer_weights`) and shows them before
anything is sent; only the lot's maker (the processor or cooperative whose data hash made it)
may commit them to SaleSettlement. The lot's holder or first buyer settles a sale: the service
checks the lot, the shares and the balance, approves exactly the amount, eth_calls settleSale
and only then sends it (the allowance is withdrawn if anything fails). What each settlement
paid is read back from SaleSettlement's events.

Ownership: a lot is visible to its maker, its holder and its first buyer (403 for anyone else,
404 for an unknown lot); a refused transaction is 409 with the contract's reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address
from pydantic import BaseModel
from pydantic import Field as PydField
from web3.contract import Contract

from api.core.chain import check_call, org_sender
from api.core.errors import Conflict, Forbidden, NotFound, Unavailable
from api.core.ids import hex32, parse_id, same_address
from api.core.models import Organisation
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from api.core.types import MAX_FEN, Int
from chain.client import ChainClient
from chain.errors import ChainError
from chain.events import EventReader
from chain.sender import TRANSIENT
from lending.loans.contracts import SALE_SETTLEMENT
from lending.loans.disbursement import events_of
from lending.loans.errors import translate_reverts
from lending.loans.settlement import (
    FarmerSettlement,
    FarmerShare,
    SettlementDesk,
    normalize_shares,
    shares_hash,
    split_amount,
)
from traceability import contracts
from traceability.contracts import deployment_block
from traceability.lineage import LineageReader

ZERO_ADDRESS = "0x" + "00" * 20


# ------------------------------------------------------------------------------------ models


class SettleIn(BaseModel):
    """A payment for a lot you hold or bought first, split among its farmers by the shares."""

    amount_fen: Int = PydField(gt=0, le=MAX_FEN, description="amount in fen (0.01 yuan)")


class ShareOut(BaseModel):
    """One farmer's weight in a lot and, with an amount, their part of it."""

    farmer_id: str
    weight_grams: int
    share_fen: int | None = None


class SharesPreview(BaseModel):
    """A lot's farmer shares computed from lineage, and what SaleSettlement holds for it."""

    lot: str
    maker: str
    holder: str
    first_buyer: str | None
    recalled: bool
    farmers: list[ShareOut]
    total_weight_grams: int
    shares_hash: str
    committed_hash: str | None
    committed_matches: bool
    sales_settled: int
    amount_fen: int | None = None


class SharesCommittedOut(BaseModel):
    """Shares committed on chain."""

    lot: str
    shares_hash: str
    farmers: list[ShareOut]
    total_weight_grams: int
    transaction: str


class FarmerSettledOut(BaseModel):
    """Where one farmer's share of a sale went (fen)."""

    farmer_id: str
    share_fen: int
    repaid_to_loan_fen: int
    loan_escrow: str | None
    paid_to_farmer_fen: int
    held_for_farmer_fen: int


class SettlementOut(BaseModel):
    """One settled sale of a lot."""

    sale_id: int
    lot: str
    payer: str
    amount_fen: int
    block: int
    transaction: str
    farmers: list[FarmerSettledOut]


# ------------------------------------------------------------------------------------ chain


@dataclass(frozen=True)
class LotParties:
    """Who made, holds and first bought a lot."""

    lot: bytes
    maker: str
    data_hash: bytes
    holder: str
    first_buyer: str | None
    recalled: bool


def settlement_desk(chain: ChainClient) -> SettlementDesk:
    """The deployed SaleSettlement (503 when the lending contracts are not deployed)."""
    try:
        return SettlementDesk(chain, SALE_SETTLEMENT, deployment_block(chain))
    except (ChainError, *TRANSIENT):
        raise
    except Exception as exc:  # no deployment on this chain
        raise Unavailable(f"SaleSettlement is not deployed on this chain ({exc})") from exc


def _trace(chain: ChainClient) -> tuple[Contract, EventReader]:
    """TeaTrace and a reader of its events."""
    trace = contracts.deployed(chain, contracts.TEA_TRACE)
    return trace, chain.event_reader(trace.address, trace.abi, deployment_block(chain))


def lot_parties(chain: ChainClient, lot_hex: str) -> LotParties:
    """The lot's maker (and its data hash), holder and first buyer; 404 for an unknown lot."""
    lot = parse_id(lot_hex, "lot")
    trace, events = _trace(chain)
    holder, _, state, _, recalled = trace.functions.lot(lot).call()
    if int(state) == 0:
        raise NotFound(f"lot {hex32(lot)} does not exist")
    produced = events.events("LotProduced", "lot", [lot])
    if produced:
        maker, data_hash = produced[0].args["processor"], produced[0].args["dataHash"]
    else:  # a harvest lot: TeaTrace takes a harvest only from its farmer's cooperative, set
        # once (a state read: a node keeping only its latest blocks has no old transaction)
        harvest = events.events("HarvestRecorded", "lot", [lot])[0]
        farmer = contracts.farmer_record(chain, harvest.args["farmer"], trace)
        maker, data_hash = farmer.cooperative, harvest.args["dataHash"]
    buyer = trace.functions.boughtBy(lot).call()
    return LotParties(
        lot=lot,
        maker=to_checksum_address(maker),
        data_hash=bytes(data_hash),
        holder=to_checksum_address(holder),
        first_buyer=None if same_address(buyer, ZERO_ADDRESS) else to_checksum_address(buyer),
        recalled=bool(recalled),
    )


def _involved(parties: LotParties, org: Organisation) -> None:
    """403 unless the organisation made, holds or first bought the lot."""
    if not any(
        same_address(org.chain_address, who)
        for who in (parties.maker, parties.holder, parties.first_buyer)
    ):
        raise Forbidden(
            f"lot {hex32(parties.lot)} was not made, held or first bought by you "
            f"({org.chain_address})"
        )


def _shares_out(shares: tuple[FarmerShare, ...], amount_fen: int | None) -> list[ShareOut]:
    """Shares as the API shows them, with each farmer's part of `amount_fen` if given."""
    parts = split_amount(amount_fen, [s.weight for s in shares]) if amount_fen else None
    return [
        ShareOut(
            farmer_id=hex32(s.farmer_id),
            weight_grams=s.weight,
            share_fen=None if parts is None else parts[i],
        )
        for i, s in enumerate(shares)
    ]


def lineage_shares(chain: ChainClient, lot: bytes) -> tuple[FarmerShare, ...]:
    """The lot's farmer shares walked from TeaTrace's lineage events, in the contract's order."""
    weights = LineageReader.from_client(chain).farmer_weights(lot)
    if not weights:
        raise Conflict(f"lot {hex32(lot)} has no harvest in its lineage")
    return normalize_shares(weights)


# ------------------------------------------------------------------------------------ routes


def preview(
    chain: ChainClient, org: Organisation, lot_hex: str, amount_fen: int | None
) -> SharesPreview:
    """The lot's shares from lineage and their state on chain; nothing is sent."""
    parties = lot_parties(chain, lot_hex)
    _involved(parties, org)
    desk = settlement_desk(chain)
    shares = lineage_shares(chain, parties.lot)
    stored = desk.commitment(parties.lot)
    computed = shares_hash(shares)
    committed = None if stored.shares_hash == bytes(32) else stored.shares_hash
    return SharesPreview(
        lot=hex32(parties.lot),
        maker=parties.maker,
        holder=parties.holder,
        first_buyer=parties.first_buyer,
        recalled=parties.recalled,
        farmers=_shares_out(shares, amount_fen),
        total_weight_grams=sum(s.weight for s in shares),
        shares_hash=hex32(computed),
        committed_hash=None if committed is None else hex32(committed),
        committed_matches=committed == computed,
        sales_settled=stored.sales,
        amount_fen=amount_fen,
    )


def commit(
    chain: ChainClient, settings: ApiSettings, org: Organisation, lot_hex: str
) -> SharesCommittedOut:
    """Commit the lineage shares of a lot the organisation made (eth_call first)."""
    parties = lot_parties(chain, lot_hex)
    _involved(parties, org)
    if not same_address(org.chain_address, parties.maker):
        raise Forbidden(f"only the lot's maker ({parties.maker}) commits its shares")
    desk = settlement_desk(chain)
    shares = lineage_shares(chain, parties.lot)
    fn = desk.commit_shares_call(parties.lot, parties.data_hash, shares)
    check_call(chain, fn, org.chain_address)
    with translate_reverts():
        receipt = org_sender(chain, settings, org).transact(fn)
    return SharesCommittedOut(
        lot=hex32(parties.lot),
        shares_hash=hex32(shares_hash(shares)),
        farmers=_shares_out(shares, None),
        total_weight_grams=sum(s.weight for s in shares),
        transaction=receipt["transactionHash"].to_0x_hex(),
    )


def settle(
    chain: ChainClient, settings: ApiSettings, org: Organisation, lot_hex: str, body: SettleIn
) -> SettlementOut:
    """Pay for a lot: checks, approve exactly the amount, eth_call settleSale, then send it."""
    parties = lot_parties(chain, lot_hex)
    _involved(parties, org)
    payers = (parties.holder, parties.first_buyer)
    if not any(same_address(org.chain_address, p) for p in payers):
        raise Forbidden("only the lot's holder or first buyer pays for it")
    desk = settlement_desk(chain)
    if desk.commitment(parties.lot).shares_hash == bytes(32):
        raise Conflict(f"lot {hex32(parties.lot)} has no committed shares: its maker commits them")
    shares = desk.committed_shares(parties.lot)
    balance = int(desk.token.functions.balanceOf(org.chain_address).call())
    if balance < body.amount_fen:
        raise Conflict(f"your eCNY balance is {balance} fen, below {body.amount_fen} fen")
    fn = desk.settle_sale_call(parties.lot, body.amount_fen, shares)
    sender = org_sender(chain, settings, org)
    approve = desk.token.functions.approve
    sender.transact(approve(desk.contract.address, body.amount_fen))
    try:
        check_call(chain, fn, org.chain_address)
        with translate_reverts():
            receipt = sender.transact(fn)
    except Exception:
        sender.transact(approve(desk.contract.address, 0))  # leave no allowance behind
        raise
    sale = events_of(desk.contract, "SaleSettled", receipt)[0]["args"]
    settled = events_of(desk.contract, "FarmerShareSettled", receipt)
    return SettlementOut(
        sale_id=int(sale["saleId"]),
        lot=hex32(parties.lot),
        payer=to_checksum_address(org.chain_address),
        amount_fen=body.amount_fen,
        block=int(receipt["blockNumber"]),
        transaction=receipt["transactionHash"].to_0x_hex(),
        farmers=[_farmer_out(_farmer_settlement(e["args"])) for e in settled],
    )


def settlements(
    chain: ChainClient, org: Organisation, lot_hex: str, page: PageParams
) -> Page[SettlementOut]:
    """What each settled sale of the lot paid, per farmer, oldest first (from events)."""
    parties = lot_parties(chain, lot_hex)
    _involved(parties, org)
    desk = settlement_desk(chain)
    contract = desk.contract
    reader = chain.event_reader(contract.address, contract.abi, deployment_block(chain))
    sales = reader.events("SaleSettled", "lot", [parties.lot])
    window = sales[page.offset : page.offset + page.limit]
    ids = [int(s.args["saleId"]) for s in window]
    rows: dict[int, list[FarmerSettledOut]] = {i: [] for i in ids}
    for event in reader.events("FarmerShareSettled", "saleId", ids) if ids else []:
        rows[int(event.args["saleId"])].append(_farmer_out(_farmer_settlement(event.args)))
    items = [
        SettlementOut(
            sale_id=int(s.args["saleId"]),
            lot=hex32(parties.lot),
            payer=to_checksum_address(s.args["distributor"]),
            amount_fen=int(s.args["amount"]),
            block=s.block_number,
            transaction="0x" + bytes(s.tx_hash).hex(),
            farmers=rows[int(s.args["saleId"])],
        )
        for s in window
    ]
    return Page(items=items, total=len(sales), limit=page.limit, offset=page.offset)


def _farmer_settlement(args: Mapping[str, Any]) -> FarmerSettlement:
    """A FarmerShareSettled event's arguments as lending's FarmerSettlement."""
    escrow = str(args["escrow"])
    return FarmerSettlement(
        farmer_id=bytes(args["farmerId"]),
        escrow=None if int(escrow, 16) == 0 else to_checksum_address(escrow),
        share_fen=int(args["share"]),
        repaid_fen=int(args["repaid"]),
        paid_out_fen=int(args["paidOut"]),
        held_fen=int(args["held"]),
    )


def _farmer_out(row: FarmerSettlement) -> FarmerSettledOut:
    """One farmer's part of a sale as the API shows it."""
    return FarmerSettledOut(
        farmer_id=hex32(row.farmer_id),
        share_fen=row.share_fen,
        repaid_to_loan_fen=row.repaid_fen,
        loan_escrow=row.escrow,
        paid_to_farmer_fen=row.paid_out_fen,
        held_for_farmer_fen=row.held_fen,
    )
