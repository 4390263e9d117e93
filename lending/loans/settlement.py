"""Sale settlement: a lot's farmer shares (SaleSettlement's input format), their commitment,
and settling sales.

Trust model (docs/disbursement.md): walking lineage on chain is unbounded, so the processor or
cooperative that made the lot (holding SHARE_COMMITTER_ROLE) commits its (farmer id, fresh-leaf
grams) list; only the lot's holder or first buyer pays for it, and a recalled lot is not paid.
The list is a supply-chain fact, computed by traceability from TeaTrace's events
(`traceability.lineage.LineageReader.farmer_weights`); this module takes it as input. It is
public (SharesCommitted), anyone can recompute it and compare it with
`SettlementDesk.verify_committed`, and it is frozen once a sale of the lot is settled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract.contract import ContractFunction

from chain.client import ChainClient
from chain.events import EventReader
from chain.sender import Sender
from indexer.seasons import allocate
from lending.loans.contracts import PAYMENT_TOKEN, SALE_SETTLEMENT
from lending.loans.disbursement import events_of
from lending.loans.errors import SharesError, translate_reverts

MAX_FARMERS_PER_LOT = 100
MAX_WEIGHT = 2**64 - 1


# ---------------------------------------------------------------- arithmetic


def split_amount(amount_fen: int, weights: Sequence[int]) -> list[int]:
    """Largest-remainder split, exactly as SaleSettlement pays: floor(amount * w / total) each,
    then one more fen to the farmers with the largest remainders (ties: earlier farmer)."""
    if amount_fen < 0 or not weights or any(w <= 0 for w in weights):
        raise SharesError("need a non-negative amount and at least one positive weight")
    return [share for _, share in allocate(amount_fen, list(enumerate(weights)))]


# ---------------------------------------------------------------- shares


@dataclass(frozen=True, order=True)
class FarmerShare:
    """One farmer's weight (fresh-leaf grams) in a lot."""

    farmer_id: bytes
    weight: int


Shares = Mapping[bytes, int] | Iterable[FarmerShare]


def normalize_shares(shares: Shares) -> tuple[FarmerShare, ...]:
    """Shares sorted by farmer id (the contract's order), validated."""
    items = (
        [FarmerShare(k, v) for k, v in shares.items()]
        if isinstance(shares, Mapping)
        else list(shares)
    )
    items.sort()
    if not 1 <= len(items) <= MAX_FARMERS_PER_LOT:
        raise SharesError(f"a lot takes 1 to {MAX_FARMERS_PER_LOT} farmers, got {len(items)}")
    for a, b in pairwise(items):
        if a.farmer_id == b.farmer_id:
            raise SharesError(f"farmer 0x{a.farmer_id.hex()} appears twice: merge the weights")
    for s in items:
        if len(s.farmer_id) != 32 or not 0 < s.weight <= MAX_WEIGHT:
            raise SharesError(
                f"farmer 0x{s.farmer_id.hex()}: id must be 32 bytes, weight 1..2**64-1 grams"
            )
    return tuple(items)


def shares_hash(shares: Sequence[FarmerShare]) -> bytes:
    """keccak256(abi.encode(farmerIds, weights)), as SaleSettlement commits it."""
    ids = [s.farmer_id for s in shares]
    weights = [s.weight for s in shares]
    return keccak(encode(["bytes32[]", "uint256[]"], [ids, weights]))


# ---------------------------------------------------------------- contract calls


@dataclass(frozen=True)
class LotShares:
    """SaleSettlement's record of a lot's committed shares."""

    shares_hash: bytes  # zero if nothing is committed
    total_weight: int
    farmers: int
    sales: int  # settled sales; the shares are frozen once this is above zero


@dataclass(frozen=True)
class FarmerSettlement:
    """Where one farmer's share of a sale went (fen)."""

    farmer_id: bytes
    escrow: str | None
    share_fen: int
    repaid_fen: int
    paid_out_fen: int
    held_fen: int


@dataclass(frozen=True)
class SaleResult:
    """A settled sale."""

    sale_id: int
    lot: bytes
    amount_fen: int
    farmers: tuple[FarmerSettlement, ...]
    tx_hash: str
    gas_used: int


class SettlementDesk:
    """A cooperative's, processor's or distributor's handle on SaleSettlement."""

    def __init__(
        self, client: ChainClient, settlement: str = SALE_SETTLEMENT, from_block: int = 0
    ) -> None:
        self.client = client
        self.from_block = from_block  # where event queries start (the deployment block)
        self.contract = (
            client.contract(SALE_SETTLEMENT, settlement)
            if Web3.is_address(settlement)
            else client.contract(settlement)
        )
        token, _, _ = self.contract.functions.bindings().call()
        self.token = client.contract(PAYMENT_TOKEN, token)

    def commit_shares_call(self, lot: bytes, data_hash: bytes, shares: Shares) -> ContractFunction:
        """The commitShares call of a lot's shares (validated, in the contract's order); only the
        lot's maker may send it: `lot` must be TeaTrace's lotId(sender, data_hash)."""
        normal = normalize_shares(shares)
        return self.contract.functions.commitShares(
            lot, data_hash, [s.farmer_id for s in normal], [s.weight for s in normal]
        )

    def commit_shares(
        self, lot: bytes, data_hash: bytes, shares: Shares, by: Sender
    ) -> tuple[FarmerShare, ...]:
        """Commit the shares of a lot `by` made from `data_hash` (SHARE_COMMITTER_ROLE);
        returns them as committed."""
        with translate_reverts():
            by.transact(self.commit_shares_call(lot, data_hash, shares))
        return normalize_shares(shares)

    def commitment(self, lot: bytes) -> LotShares:
        """What SaleSettlement stores for the lot's shares (`lotShares`)."""
        shares_hash, total, farmers, sales = self.contract.functions.lotShares(lot).call()
        return LotShares(bytes(shares_hash), int(total), int(farmers), int(sales))

    def committed_shares(
        self, lot: bytes, from_block: int | None = None
    ) -> tuple[FarmerShare, ...]:
        """The lot's committed shares, from the SharesCommitted event matching the stored hash."""
        committed = self.commitment(lot).shares_hash
        if committed == bytes(32):
            raise SharesError(f"no shares committed for lot 0x{lot.hex()}")
        for event in reversed(self._events(from_block).events("SharesCommitted", "lot", [lot])):
            args = event.args
            if args["sharesHash"] == committed:
                pairs = zip(args["farmerIds"], args["weights"], strict=True)
                return tuple(FarmerShare(f, w) for f, w in pairs)
        raise SharesError(f"lot 0x{lot.hex()}: no SharesCommitted event has the stored hash")

    def verify_committed(self, lot: bytes, shares: Shares) -> bool:
        """True if the lot's committed shares equal `shares` (the caller's own computation from
        lineage, e.g. traceability's LineageReader.farmer_weights)."""
        return self.committed_shares(lot) == normalize_shares(shares)

    def settle_sale_call(
        self, lot: bytes, amount_fen: int, shares: Sequence[FarmerShare]
    ) -> ContractFunction:
        """The settleSale call: pay `amount_fen` for `lot` split by the committed `shares`."""
        return self.contract.functions.settleSale(
            lot, amount_fen, [s.farmer_id for s in shares], [s.weight for s in shares]
        )

    def settle_sale(
        self,
        lot: bytes,
        amount_fen: int,
        distributor: Sender,
        shares: Sequence[FarmerShare] | None = None,
    ) -> SaleResult:
        """Pay `amount_fen` for `lot` (approve, then settleSale) and report each farmer's part."""
        normal = tuple(shares) if shares is not None else self.committed_shares(lot)
        with translate_reverts():
            distributor.transact(self.token.functions.approve(self.contract.address, amount_fen))
            receipt = distributor.transact(self.settle_sale_call(lot, amount_fen, normal))
        return self._result(lot, amount_fen, receipt)

    def settled_shares(self, escrows: Iterable[str] | None = None) -> list[FarmerSettlement]:
        """Farmers' shares of settled sales, oldest first; with `escrows`, only those that went
        to one of these loan escrows."""
        reader = self._events()
        if escrows is None:
            events = reader.events("FarmerShareSettled")
        else:
            wanted = [to_checksum_address(e) for e in escrows]
            events = reader.events("FarmerShareSettled", "escrow", wanted)
        return [_farmer_settlement(e.args) for e in events]

    def _events(self, from_block: int | None = None) -> EventReader:
        """SaleSettlement's events from `from_block` (default: the desk's start block)."""
        start = self.from_block if from_block is None else from_block
        return self.client.event_reader(self.contract.address, self.contract.abi, start)

    def _result(self, lot: bytes, amount_fen: int, receipt: Any) -> SaleResult:
        """SaleResult from the settling receipt."""
        sale = events_of(self.contract, "SaleSettled", receipt)[0]["args"]
        settled = events_of(self.contract, "FarmerShareSettled", receipt)
        rows = tuple(_farmer_settlement(e["args"]) for e in settled)
        return SaleResult(
            sale_id=int(sale["saleId"]),
            lot=lot,
            amount_fen=amount_fen,
            farmers=rows,
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            gas_used=receipt["gasUsed"],
        )

    def claim_held(self, farmer_id: bytes, by: Sender) -> int:
        """Send proceeds held for a farmer to the farmer's TeaTrace wallet; returns fen sent."""
        amount = self.held_for(farmer_id)
        with translate_reverts():
            by.transact(self.contract.functions.claimHeld(farmer_id))
        return amount

    def held_for(self, farmer_id: bytes) -> int:
        """Proceeds held for a farmer who had no wallet at settlement."""
        return int(self.contract.functions.heldFor(farmer_id).call())

    def split(self, amount_fen: int, shares: Sequence[FarmerShare]) -> list[int]:
        """The contract's own split (for cross-checking split_amount)."""
        weights = [s.weight for s in shares]
        return list(self.contract.functions.splitAmount(amount_fen, weights).call())


def _farmer_settlement(args: Mapping[str, Any]) -> FarmerSettlement:
    """A FarmerShareSettled event's arguments as a FarmerSettlement."""
    return FarmerSettlement(
        farmer_id=bytes(args["farmerId"]),
        escrow=None if int(args["escrow"], 16) == 0 else str(args["escrow"]),
        share_fen=int(args["share"]),
        repaid_fen=int(args["repaid"]),
        paid_out_fen=int(args["paidOut"]),
        held_fen=int(args["held"]),
    )
