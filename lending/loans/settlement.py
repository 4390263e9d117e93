"""Sale settlement: farmer shares of a lot from TeaTrace lineage, commitment, and settling sales.

Trust model (docs/disbursement.md): walking lineage on chain is unbounded, so a processor or
cooperative holding SHARE_COMMITTER_ROLE commits each lot's (farmer id, fresh-leaf grams) list,
computed here from TeaTrace's HarvestRecorded / LotConsumed / LotProduced events. The list is
public (SharesCommitted), anyone can recompute it with `lot_shares` and compare it with
`SettlementDesk.verify_committed`, and it is frozen once a sale of the lot is settled.

A processing step's inputs flow into its outputs in proportion to output mass, so a farmer's
contribution to a lot is an exact fraction of grams; the committed integer weights apportion
the rounded total by largest remainder (exact grams when no lot was ever split).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract

from chain.client import ChainClient
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


def _apportion(quotas: Mapping[bytes, Fraction]) -> dict[bytes, int]:
    """Integer grams adding up to the rounded total, by largest remainder (ties: lower id)."""
    total = sum(quotas.values(), Fraction(0))
    target = int(total + Fraction(1, 2))
    if target <= 0:
        raise SharesError("the lot has no fresh-leaf contribution to share")
    floors = {k: int(q * target / total) for k, q in quotas.items()}
    order = sorted(quotas, key=lambda k: (-(quotas[k] * target / total - floors[k]), k))
    for key in order[: target - sum(floors.values())]:
        floors[key] += 1
    return {k: v for k, v in floors.items() if v > 0}


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


# ---------------------------------------------------------------- lineage


@dataclass(frozen=True)
class HarvestLot:
    """A fresh-leaf lot: one farmer's picking."""

    lot: bytes
    farmer_id: bytes
    grams: int


@dataclass(frozen=True)
class ProcessStep:
    """A processing step: whole input lots consumed, output lots produced (lot, grams)."""

    process_id: bytes
    inputs: tuple[tuple[bytes, int], ...]
    outputs: tuple[tuple[bytes, int], ...]


class LineageGraph:
    """Harvests and processing steps, enough to attribute any lot to farmers."""

    def __init__(self, harvests: Iterable[HarvestLot], steps: Iterable[ProcessStep]) -> None:
        self._harvests = {h.lot: h for h in harvests}
        self._steps: dict[bytes, ProcessStep] = {}
        self._producer: dict[bytes, ProcessStep] = {}
        for step in steps:
            self._steps[step.process_id] = step
            for lot, _ in step.outputs:
                self._producer[lot] = step
        self._memo: dict[bytes, dict[bytes, Fraction]] = {}

    def contributions(self, lot: bytes) -> dict[bytes, Fraction]:
        """Fresh-leaf grams each farmer contributed to `lot`, as exact fractions."""
        if lot in self._memo:
            return self._memo[lot]
        if lot in self._harvests:
            h = self._harvests[lot]
            result = {h.farmer_id: Fraction(h.grams)}
        elif lot in self._producer:
            result = self._through(lot, self._producer[lot])
        else:
            raise SharesError(f"lot 0x{lot.hex()} has no harvest or processing record")
        self._memo[lot] = result
        return result

    def _through(self, lot: bytes, step: ProcessStep) -> dict[bytes, Fraction]:
        """The step's inputs' contributions, scaled by this output's share of output mass."""
        out_total = sum(g for _, g in step.outputs)
        fraction = Fraction(dict(step.outputs)[lot], out_total)
        result: dict[bytes, Fraction] = {}
        for source, _ in step.inputs:
            for farmer, grams in self.contributions(source).items():
                result[farmer] = result.get(farmer, Fraction(0)) + grams * fraction
        return result

    def shares(self, lot: bytes) -> tuple[FarmerShare, ...]:
        """The integer weights to commit for `lot`."""
        return normalize_shares(_apportion(self.contributions(lot)))


def _trace_contract(client: ChainClient, tea_trace: str) -> Contract:
    """TeaTrace's events through its interface ABI, by address or registry name."""
    address = tea_trace if Web3.is_address(tea_trace) else client.registry.address(tea_trace)
    return client.contract("ITeaTrace", address)


def _logs(event: Any, from_block: int, **filters: Any) -> list[Any]:
    """Decoded logs of one event filtered on indexed arguments."""
    return list(event().get_logs(from_block=from_block, argument_filters=filters))


def read_lineage(
    client: ChainClient, lot: bytes, tea_trace: str = "TeaTrace", from_block: int = 0
) -> LineageGraph:
    """The part of TeaTrace's lineage behind `lot`, walked back by topic-filtered log queries."""
    events = _trace_contract(client, tea_trace).events
    harvests: list[HarvestLot] = []
    steps: dict[bytes, ProcessStep] = {}
    frontier, seen = [lot], set()
    while frontier:
        current = frontier.pop()
        if current in seen:
            continue
        seen.add(current)
        harvest = _logs(events.HarvestRecorded, from_block, lot=current)
        if harvest:
            args = harvest[0]["args"]
            harvests.append(HarvestLot(current, bytes(args["farmer"]), int(args["grams"])))
            continue
        step = _producing_step(events, current, from_block, steps)
        frontier.extend(source for source, _ in step.inputs)
    return LineageGraph(harvests, steps.values())


def _producing_step(
    events: Any, lot: bytes, from_block: int, steps: dict[bytes, ProcessStep]
) -> ProcessStep:
    """The step that produced `lot` (read once per step)."""
    produced = _logs(events.LotProduced, from_block, lot=lot)
    if not produced:
        raise SharesError(f"lot 0x{lot.hex()} was neither harvested nor produced in TeaTrace")
    process_id = bytes(produced[0]["args"]["processId"])
    if process_id not in steps:
        inputs = _logs(events.LotConsumed, from_block, processId=process_id)
        outputs = _logs(events.LotProduced, from_block, processId=process_id)
        steps[process_id] = ProcessStep(
            process_id,
            tuple((bytes(e["args"]["lot"]), int(e["args"]["grams"])) for e in inputs),
            tuple((bytes(e["args"]["lot"]), int(e["args"]["grams"])) for e in outputs),
        )
    return steps[process_id]


def lot_shares(
    client: ChainClient, lot: bytes, tea_trace: str = "TeaTrace", from_block: int = 0
) -> tuple[FarmerShare, ...]:
    """The farmer shares of `lot` computed from TeaTrace events."""
    return read_lineage(client, lot, tea_trace, from_block).shares(lot)


# ---------------------------------------------------------------- contract calls


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

    def commit_shares(self, lot: bytes, shares: Shares, by: Sender) -> tuple[FarmerShare, ...]:
        """Commit a lot's farmer shares (SHARE_COMMITTER_ROLE); returns them as committed."""
        normal = normalize_shares(shares)
        fn = self.contract.functions.commitShares(
            lot, [s.farmer_id for s in normal], [s.weight for s in normal]
        )
        with translate_reverts():
            by.transact(fn)
        return normal

    def committed_shares(
        self, lot: bytes, from_block: int | None = None
    ) -> tuple[FarmerShare, ...]:
        """The lot's committed shares, from the SharesCommitted event matching the stored hash."""
        committed = bytes(self.contract.functions.lotShares(lot).call()[0])
        if committed == bytes(32):
            raise SharesError(f"no shares committed for lot 0x{lot.hex()}")
        event = self.contract.events.SharesCommitted()
        start = self.from_block if from_block is None else from_block
        for log in reversed(event.get_logs(from_block=start, argument_filters={"lot": lot})):
            args = log["args"]
            if bytes(args["sharesHash"]) == committed:
                pairs = zip(args["farmerIds"], args["weights"], strict=True)
                return tuple(FarmerShare(bytes(f), int(w)) for f, w in pairs)
        raise SharesError(f"lot 0x{lot.hex()}: no SharesCommitted event has the stored hash")

    def verify_committed(
        self, lot: bytes, tea_trace: str = "TeaTrace", from_block: int = 0
    ) -> bool:
        """True if the committed shares equal the ones computed from TeaTrace lineage (read from
        `from_block`, TeaTrace's deployment block)."""
        computed = lot_shares(self.client, lot, tea_trace, from_block)
        return self.committed_shares(lot) == computed

    def settle_sale(
        self,
        lot: bytes,
        amount_fen: int,
        distributor: Sender,
        shares: Sequence[FarmerShare] | None = None,
    ) -> SaleResult:
        """Pay `amount_fen` for `lot` (approve, then settleSale) and report each farmer's part."""
        normal = tuple(shares) if shares is not None else self.committed_shares(lot)
        fn = self.contract.functions.settleSale(
            lot, amount_fen, [s.farmer_id for s in normal], [s.weight for s in normal]
        )
        with translate_reverts():
            distributor.transact(self.token.functions.approve(self.contract.address, amount_fen))
            receipt = distributor.transact(fn)
        return self._result(lot, amount_fen, receipt)

    def _result(self, lot: bytes, amount_fen: int, receipt: Any) -> SaleResult:
        """SaleResult from the settling receipt."""
        sale = events_of(self.contract, "SaleSettled", receipt)[0]["args"]
        settled = events_of(self.contract, "FarmerShareSettled", receipt)
        rows = tuple(
            FarmerSettlement(
                farmer_id=bytes(a["farmerId"]),
                escrow=None if int(a["escrow"], 16) == 0 else str(a["escrow"]),
                share_fen=int(a["share"]),
                repaid_fen=int(a["repaid"]),
                paid_out_fen=int(a["paidOut"]),
                held_fen=int(a["held"]),
            )
            for a in (e["args"] for e in settled)
        )
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
