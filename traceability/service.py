"""The recording service a cooperative's, processor's, distributor's or inspector's software calls.

Every record is validated (pydantic models, then the contract's own `checkHarvests` view for
harvests) before anything is sent; batches go out pipelined (`Sender.send_many`, receipts awaited
afterwards); contract reverts come back as domain errors that keep the custom error's name and
values (traceability.errors).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from eth_account.signers.local import LocalAccount
from pydantic import TypeAdapter
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from chain.client import ChainClient
from chain.errors import ContractRevertError, TransactionError
from chain.events import event_decoder
from chain.nodes import BLOCK_GAS_LIMIT
from chain.sender import Sender, bounded
from traceability import calldata, contracts
from traceability.contracts import FarmerRecord
from traceability.errors import TraceabilityError, domain_error
from traceability.ids import lot_id, lot_ids, process_id
from traceability.models import (
    Address,
    Bytes32,
    FarmerRegistration,
    HarvestCheck,
    HarvestRecord,
    LotView,
    PlotRegistration,
    ProcessOutput,
    QualityAttestation,
)

DEFAULT_BATCH = 100
CHECK_CHUNK = 500  # records per checkHarvests eth_call
HARVEST_TX_GAS = 100_000  # fixed part of a recordHarvests gas limit
HARVEST_RECORD_GAS = 40_000  # per record: ~32k measured (docs/gas.md) plus cold-slot headroom
DELIVERY_GAS = 4_000  # more per record delivered to a factory: LotShipped and LotReceived (~3.4k)


def harvest_batch_cap(block_gas_limit: int, per_record: int = HARVEST_RECORD_GAS) -> int:
    """The most harvest records per transaction on blocks of `block_gas_limit` gas: its gas
    limit stays within the block's gas target (half the limit), so however many are pipelined,
    and from however many accounts, the base fee does not rise under the fee cap they were
    signed with."""
    return max(1, (block_gas_limit // 2 - HARVEST_TX_GAS) // per_record)


MAX_HARVEST_BATCH = harvest_batch_cap(BLOCK_GAS_LIMIT)
"""The cap on 30 M-gas blocks (372: ganache's here, a real network's); bigger blocks allow more."""
# process measured 27.8k + 8.9k per input lot + 26.8k per output lot (test_process_gas.py)
PROCESS_TX_GAS = 50_000
PROCESS_INPUT_GAS = 12_000
PROCESS_OUTPUT_GAS = 35_000

# (per transaction, per item) gas limits of batch calls, about 1.3x what each item measures in
# test_batch_gas.py: ganache re-runs a transaction for every eth_estimateGas, so estimating
# each batch cost the demo more than executing it.
BATCH_GAS: dict[str, tuple[int, int]] = {
    "registerFarmers": (50_000, 62_000),
    "registerPlots": (50_000, 69_000),
    "shipBatch": (50_000, 11_000),
    "receiveBatch": (50_000, 10_000),
    "attestQualityBatch": (50_000, 8_600),
    "sellBatch": (50_000, 41_000),  # a first sale writes the first buyer's slot
    "recallBatch": (50_000, 10_300),
}

_BYTES32 = TypeAdapter(Bytes32)
_ADDRESS = TypeAdapter(Address)


def batch_gas(function: str, items: int) -> int | None:
    """A safe gas limit for a TeaTrace batch call of `items` items (None: estimate it)."""
    per_tx, per_item = BATCH_GAS[function]
    return bounded(per_tx + per_item * items)


def process_gas(inputs: int, outputs: int) -> int:
    """A safe gas limit for `process` (ganache's eth_estimateGas re-runs the transaction)."""
    return PROCESS_TX_GAS + PROCESS_INPUT_GAS * inputs + PROCESS_OUTPUT_GAS * outputs


def _price(price_fen: int) -> int:
    """A sale price: a positive whole number of fen."""
    if isinstance(price_fen, bool) or not isinstance(price_fen, int) or price_fen <= 0:
        raise TraceabilityError(f"price must be a positive whole number of fen, not {price_fen!r}")
    return price_fen


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Outcome(StrEnum):
    """What happened to one submitted harvest record."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class HarvestOutcome:
    """The fate of record `index` of a submission."""

    index: int
    lot: bytes
    outcome: Outcome
    reason: str = ""


@dataclass
class HarvestReport:
    """Per-record outcomes of `record_harvests`, in submission order, plus totals."""

    outcomes: list[HarvestOutcome]
    transactions: list[bytes] = field(default_factory=list)
    gas_used: int = 0

    def count(self, outcome: Outcome) -> int:
        """How many records ended with `outcome`."""
        return sum(1 for o in self.outcomes if o.outcome is outcome)

    @property
    def recorded(self) -> int:
        """New lots created."""
        return self.count(Outcome.RECORDED)

    @property
    def duplicates(self) -> int:
        """Records already on chain (or repeated within the submission): skipped."""
        return self.count(Outcome.DUPLICATE)

    @property
    def rejected(self) -> list[HarvestOutcome]:
        """Records that were refused, with reasons."""
        return [o for o in self.outcomes if o.outcome is Outcome.REJECTED]


@dataclass(frozen=True)
class ProcessResult:
    """A processing step on chain."""

    process_id: bytes
    outputs: list[bytes]
    receipt: TxReceipt = field(repr=False)


class RecordingService:
    """Sends one organisation's records to TeaTrace from its own account."""

    def __init__(
        self,
        client: ChainClient,
        account: LocalAccount | int = 0,
        *,
        contract: Contract | None = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        self.client = client
        self.contract = contract if contract is not None else contracts.tea_trace(client)
        self.sender: Sender = (
            client.sender(account) if isinstance(account, int) else client.sender_for(account)
        )
        self.batch_size = batch_size
        self.decoder = event_decoder(self.contract.abi)  # decodes TeaTrace logs of receipts

    @property
    def address(self) -> str:
        """The acting organisation's address."""
        return self.sender.address

    @cached_property
    def block_gas_limit(self) -> int:
        """The node's block gas limit (read once)."""
        return int(self.client.w3.eth.get_block("latest")["gasLimit"])

    @property
    def harvest_batch_cap(self) -> int:
        """Harvest records per transaction that the node's blocks admit (harvest_batch_cap):
        bigger blocks take bigger batches, and each block costs a node work of its own."""
        return harvest_batch_cap(self.block_gas_limit)

    # ------------------------------------------------------------------ sending

    def _transact(self, fn: ContractFunction) -> TxReceipt:
        """Send one call and wait; reverts become domain errors."""
        try:
            return self.sender.transact(fn)
        except ContractRevertError as exc:
            raise domain_error(exc) from exc

    def _gas(self, function: str, items: Sequence[Any]) -> int | None:
        """The gas bound of this service's largest batch of `items` for `function`."""
        return batch_gas(function, min(len(items), self.batch_size))

    def _send_all(
        self, calls: Sequence[ContractFunction], gas: int | None = None
    ) -> list[TxReceipt]:
        """Pipeline calls (sent back to back, then awaited); reverts become domain errors.

        The receipts come in JSON-RPC batches with their logs as the node sent them (Sender.settle):
        web3's formatting of each batch's hundreds of logs was most of the season's Python time
        (docs/demo.md, "Re-running and scaling").
        """
        try:
            settled = self.sender.settle(self.sender.send_many(calls, gas=gas))
        except ContractRevertError as exc:
            raise domain_error(exc) from exc
        failed = next((r for r in settled if isinstance(r, TransactionError)), None)
        if isinstance(failed, ContractRevertError):
            raise domain_error(failed) from failed
        if failed is not None:
            raise failed
        return settled  # type: ignore[return-value]  # no TransactionError is left in it

    # ------------------------------------------------------------------ farmers and plots

    def register_farmers(self, farmers: Sequence[FarmerRegistration]) -> list[TxReceipt]:
        """Register farmers of this cooperative, in pipelined batches."""
        fn = self.contract.functions.registerFarmers
        calls = [fn([f.as_tuple() for f in batch]) for batch in _chunks(farmers, self.batch_size)]
        return self._send_all(calls, self._gas("registerFarmers", farmers))

    def register_plots(self, plots: Sequence[PlotRegistration]) -> list[TxReceipt]:
        """Register plots of this cooperative's farmers, in pipelined batches."""
        fn = self.contract.functions.registerPlots
        calls = [fn([p.as_tuple() for p in batch]) for batch in _chunks(plots, self.batch_size)]
        return self._send_all(calls, self._gas("registerPlots", plots))

    def set_farmer_wallet_call(self, farmer: bytes | str, wallet: str | None) -> ContractFunction:
        """The setFarmerWallet call (None: no wallet), for sending alone or pipelined."""
        target = _ADDRESS.validate_python(wallet) if wallet else "0x" + "00" * 20
        return self.contract.functions.setFarmerWallet(_BYTES32.validate_python(farmer), target)

    def set_farmer_wallet(self, farmer: bytes | str, wallet: str | None) -> TxReceipt:
        """Point a farmer's proceeds/consent wallet elsewhere (None: no wallet)."""
        return self._transact(self.set_farmer_wallet_call(farmer, wallet))

    def deactivate_farmer(self, farmer: bytes | str) -> TxReceipt:
        """Stop new plots and harvests for a farmer."""
        fid = _BYTES32.validate_python(farmer)
        return self._transact(self.contract.functions.deactivateFarmer(fid))

    def reactivate_farmer(self, farmer: bytes | str) -> TxReceipt:
        """Allow a deactivated farmer's harvests again."""
        fid = _BYTES32.validate_python(farmer)
        return self._transact(self.contract.functions.reactivateFarmer(fid))

    # ------------------------------------------------------------------ harvests

    def check_harvests(
        self, records: Sequence[HarvestRecord], as_of: int | None = None
    ) -> list[HarvestCheck]:
        """The contract's verdict on each record, as this cooperative, without sending."""
        moment = int(time.time()) if as_of is None else as_of
        checks: list[HarvestCheck] = []
        for chunk in _chunks(records, CHECK_CHUNK):
            # Encoded directly: web3's argument formatting cost more than the call (calldata.py).
            data = calldata.check_harvests_data(self.address, moment, [r.as_tuple() for r in chunk])
            call = {"from": self.address, "to": self.contract.address, "data": data}
            returned = self.client.w3.eth.call(call)  # type: ignore[arg-type]
            checks.extend(HarvestCheck(c) for c in calldata.decode_checks(returned, len(chunk)))
        return checks

    def record_harvests(
        self,
        records: Sequence[HarvestRecord],
        on_progress: Callable[[int], None] | None = None,
        *,
        deliver_to: str | None = None,
    ) -> HarvestReport:
        """Record harvests; valid ones always go on chain, and never twice.

        Records repeated within `records` or already on chain are reported as duplicates; records
        the contract would refuse are reported as rejected with the reason; the rest are sent in
        pipelined batches. `on_progress(n)` is called as n more records are settled (first the
        ones the pre-check settles, then each mined batch), adding up to len(records).
        `deliver_to` names the factory the leaf went to that day: the new lots are held by it
        (recordDeliveries), which must accept this cooperative as a supplier; nothing is sent
        if it does not.
        """
        consignee = None if deliver_to is None else self._consignee(deliver_to)
        return _HarvestSubmission(self, records, on_progress, consignee).run()

    def _consignee(self, deliver_to: str) -> str:
        """`deliver_to` as a checksum address, or an error saying why leaf cannot go there."""
        try:
            consignee = _ADDRESS.validate_python(deliver_to)
        except ValueError:
            raise TraceabilityError(f"deliver_to is not an address: {deliver_to!r}") from None
        if not self.is_supplier(consignee, self.address):
            raise TraceabilityError(
                f"{consignee} does not accept harvests from {self.address}: the factory must "
                "first accept this cooperative as a supplier (setSupplier)"
            )
        return consignee

    def set_supplier(self, cooperative: str, accepted: bool = True) -> TxReceipt:
        """As a consignee, accept (or stop accepting) harvests recorded straight to us."""
        target = _ADDRESS.validate_python(cooperative)
        return self._transact(self.contract.functions.setSupplier(target, accepted))

    def is_supplier(self, consignee: str, cooperative: str) -> bool:
        """Whether `consignee` accepts harvests recorded straight to it by `cooperative`."""
        pair = (_ADDRESS.validate_python(consignee), _ADDRESS.validate_python(cooperative))
        return contracts.supplier_flags(self.client, [pair], self.contract)[0]

    # ------------------------------------------------------------------ processing

    def process(
        self, inputs: Sequence[bytes | str], outputs: Sequence[ProcessOutput]
    ) -> ProcessResult:
        """Consume whole input lots held by this processor into made-tea output lots."""
        ids = [_BYTES32.validate_python(lot) for lot in inputs]
        receipt = self._transact(
            self.contract.functions.process(ids, [o.as_tuple() for o in outputs])
        )
        out = [lot_id(self.address, o.data_hash) for o in outputs]
        return ProcessResult(process_id(ids), out, receipt)

    def process_many(
        self, steps: Sequence[tuple[Sequence[bytes | str], Sequence[ProcessOutput]]]
    ) -> list[ProcessResult]:
        """Several independent processing steps, pipelined (e.g. a plant's day of runs).

        Gas limits come from `process_gas`, not from the node: a day of runs is thousands of
        steps, and estimating each one doubled a development node's work. A step that reverts
        is mined as failed and raises its decoded error when awaited.
        """
        ids = [[_BYTES32.validate_python(lot) for lot in inputs] for inputs, _ in steps]
        fn = self.contract.functions.process
        calls = [
            fn(inputs, [o.as_tuple() for o in outputs])
            for inputs, (_, outputs) in zip(ids, steps, strict=True)
        ]
        sizes = [
            (len(inputs), len(outputs)) for inputs, (_, outputs) in zip(ids, steps, strict=True)
        ]
        gas = max((process_gas(i, o) for i, o in sizes), default=0)
        receipts = self._send_all(calls, gas=gas)
        return [
            ProcessResult(
                process_id(inputs), [lot_id(self.address, o.data_hash) for o in outputs], r
            )
            for inputs, (_, outputs), r in zip(ids, steps, receipts, strict=True)
        ]

    # ------------------------------------------------------------------ movement and sale

    def ship(self, lot: bytes | str, to: str) -> TxReceipt:
        """Ship a lot this organisation holds to another member."""
        fn = self.contract.functions.ship(
            _BYTES32.validate_python(lot), _ADDRESS.validate_python(to)
        )
        return self._transact(fn)

    def ship_many(self, lots: Sequence[bytes | str], to: str) -> list[TxReceipt]:
        """Ship many lots to one member, in pipelined batches."""
        ids = [_BYTES32.validate_python(lot) for lot in lots]
        recipient = _ADDRESS.validate_python(to)
        fn = self.contract.functions.shipBatch
        calls = [fn(list(b), recipient) for b in _chunks(ids, self.batch_size)]
        return self._send_all(calls, self._gas("shipBatch", ids))

    def receive(self, lot: bytes | str) -> TxReceipt:
        """Take delivery of a lot shipped to this organisation."""
        return self._transact(self.contract.functions.receiveLot(_BYTES32.validate_python(lot)))

    def receive_many(self, lots: Sequence[bytes | str]) -> list[TxReceipt]:
        """Take delivery of many lots, in pipelined batches."""
        ids = [_BYTES32.validate_python(lot) for lot in lots]
        fn = self.contract.functions.receiveBatch
        calls = [fn(list(b)) for b in _chunks(ids, self.batch_size)]
        return self._send_all(calls, self._gas("receiveBatch", ids))

    def sell(self, lot: bytes | str, buyer: str, price_fen: int) -> TxReceipt:
        """Record the sale of a lot (price in fen); the buyer becomes its holder."""
        fn = self.contract.functions.sell(
            _BYTES32.validate_python(lot), _ADDRESS.validate_python(buyer), _price(price_fen)
        )
        return self._transact(fn)

    def sell_many(
        self, lots: Sequence[bytes | str], buyer: str, prices_fen: Sequence[int]
    ) -> list[TxReceipt]:
        """Sell many lots to one buyer (each at its price in fen), in pipelined batches."""
        ids = [_BYTES32.validate_python(lot) for lot in lots]
        to = _ADDRESS.validate_python(buyer)
        sales = list(zip(ids, [_price(p) for p in prices_fen], strict=True))
        fn = self.contract.functions.sellBatch
        calls = [
            fn([s[0] for s in b], to, [s[1] for s in b]) for b in _chunks(sales, self.batch_size)
        ]
        return self._send_all(calls, self._gas("sellBatch", ids))

    # ------------------------------------------------------------------ quality and recall

    def attest(self, attestation: QualityAttestation) -> TxReceipt:
        """Record an inspector's attestation."""
        return self._transact(self.contract.functions.attestQuality(attestation.as_tuple()))

    def attest_many(self, attestations: Sequence[QualityAttestation]) -> list[TxReceipt]:
        """Record many attestations, in pipelined batches."""
        fn = self.contract.functions.attestQualityBatch
        chunks = _chunks(attestations, self.batch_size)
        calls = [fn([a.as_tuple() for a in chunk]) for chunk in chunks]
        return self._send_all(calls, self._gas("attestQualityBatch", attestations))

    def recall(self, lot: bytes | str, reason_hash: bytes | str) -> TxReceipt:
        """Recall one lot."""
        fn = self.contract.functions.recall(
            _BYTES32.validate_python(lot), _BYTES32.validate_python(reason_hash)
        )
        return self._transact(fn)

    def recall_many(self, lots: Sequence[bytes | str], reason_hash: bytes | str) -> list[TxReceipt]:
        """Recall many lots for one reason, in pipelined batches (e.g. a recall's descendants)."""
        ids = [_BYTES32.validate_python(lot) for lot in lots]
        reason = _BYTES32.validate_python(reason_hash)
        fn = self.contract.functions.recallBatch
        calls = [fn(list(b), reason) for b in _chunks(ids, self.batch_size)]
        return self._send_all(calls, self._gas("recallBatch", ids))

    def recall_with_descendants(
        self, lot: bytes | str, reason_hash: bytes | str, from_block: int = 0
    ) -> list[bytes]:
        """Recall a lot and every lot made from it not yet recalled; returns the lots recalled.

        TeaTrace marks only the lots it is told about; lineage (from events) finds the rest.
        """
        from traceability.lineage import LineageReader  # lineage reads, the service writes

        root = _BYTES32.validate_python(lot)
        impact = LineageReader.on(self.client, self.contract, from_block).recall_impact(root)
        targets = [root] if not impact.view.recalled else []
        targets += [d.lot for d in impact.descendants if not d.view.recalled]
        if targets:
            self.recall_many(targets, reason_hash)
        return targets

    # ------------------------------------------------------------------ reads

    def lots(self, ids: Sequence[bytes | str]) -> list[LotView]:
        """Stored slots of lots (state NONE for unknown ids)."""
        lots = [_BYTES32.validate_python(lot) for lot in ids]
        views: list[LotView] = []
        for chunk in _chunks(lots, CHECK_CHUNK):
            raw = self.contract.functions.lots(list(chunk)).call()
            views.extend(LotView.from_chain(lot, r) for lot, r in zip(chunk, raw, strict=True))
        return views

    def lot(self, lot: bytes | str) -> LotView:
        """One lot's stored slot."""
        return self.lots([lot])[0]

    def farmer(self, farmer: bytes | str) -> FarmerRecord:
        """The farmer's record (cooperative, wallet, active) as TeaTrace keeps it."""
        return contracts.farmer_record(self.client, _BYTES32.validate_python(farmer), self.contract)

    def harvests_in(self, tx_hash: bytes) -> list[bytes]:
        """Lots of the HarvestRecorded events of one mined transaction."""
        receipt = self.client.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        events = self.decoder.decode_receipt(receipt)
        return [e.args["lot"] for e in events if e.name == "HarvestRecorded"]


def _skipped_lots(receipt: TxReceipt, topic0: bytes) -> set[bytes]:
    """Lots of a receipt's HarvestSkipped logs (topic 1), found by topic alone: decoding each
    of a 372-record batch's HarvestRecorded logs cost more than sending the batch."""
    lots: set[bytes] = set()
    for log in receipt["logs"]:
        topics = [
            bytes.fromhex(t[2:]) if isinstance(t, str) else bytes(t) for t in log["topics"][:2]
        ]
        if len(topics) == 2 and topics[0] == topic0:
            lots.add(topics[1])
    return lots


def _domain(exc: TransactionError) -> TraceabilityError:
    """A failed transaction's error as the traceability error callers see."""
    if isinstance(exc, ContractRevertError):
        return domain_error(exc)
    return TraceabilityError(str(exc))


class _HarvestSubmission:
    """One `record_harvests` call: per-record outcomes, built up batch by batch."""

    def __init__(
        self,
        service: RecordingService,
        records: Sequence[HarvestRecord],
        on_progress: Callable[[int], None] | None,
        consignee: str | None = None,
    ) -> None:
        self._service = service
        self._records = records
        self._on_progress = on_progress
        self._consignee = consignee
        self._outcomes: dict[int, HarvestOutcome] = {}
        self._report = HarvestReport(outcomes=[])
        self._lots = lot_ids(service.address, [r.key for r in records])

    def run(self) -> HarvestReport:
        """Drop repeats, pre-check, send what is valid, settle every record."""
        to_send = self._precheck(self._first_occurrences())
        self._progress(len(self._records) - len(to_send))
        # Never more per transaction than the node's block gas target admits.
        cap = harvest_batch_cap(self._service.block_gas_limit, self._per_record)
        size = min(self._service.batch_size, cap)
        batches = list(_chunks(to_send, size))
        self._send(batches, retry=True)
        self._report.outcomes = [self._outcomes[i] for i in range(len(self._records))]
        return self._report

    def _progress(self, settled: int) -> None:
        """Tell the caller that `settled` more records are done."""
        if self._on_progress is not None and settled:
            self._on_progress(settled)

    def _mark(self, i: int, outcome: Outcome, reason: str = "") -> None:
        """Record the outcome of record i."""
        self._outcomes[i] = HarvestOutcome(i, self._lots[i], outcome, reason)

    def _first_occurrences(self) -> list[int]:
        """Indices of first occurrences; later repeats of a data hash become duplicates."""
        first: dict[bytes, int] = {}
        for i, record in enumerate(self._records):
            key = record.key
            if key in first:
                self._mark(
                    i, Outcome.DUPLICATE, f"same record as #{first[key] + 1} of this submission"
                )
            else:
                first[key] = i
        return sorted(first.values())

    def _precheck(self, indices: list[int]) -> list[int]:
        """Ask the contract about each record; return the indices that are OK to send."""
        checks = self._service.check_harvests([self._records[i] for i in indices])
        ok: list[int] = []
        for i, check in zip(indices, checks, strict=True):
            if check is HarvestCheck.OK:
                ok.append(i)
            elif check is HarvestCheck.DUPLICATE:
                self._mark(
                    i,
                    Outcome.DUPLICATE,
                    f"already recorded on chain as lot 0x{self._lots[i].hex()}",
                )
            else:
                self._mark(i, Outcome.REJECTED, check.reason)
        return ok

    def _send(self, batches: list[Sequence[int]], retry: bool) -> None:
        """Send all batches back to back, then settle each receipt.

        Gas is given, not estimated: an estimate runs against the latest block, whose timestamp
        on an idle node can make a fresh harvest look future-dated. A batch that fails (state
        changed since the pre-check) is checked again and its still-valid records resent once.
        """
        batches = [b for b in batches if b]
        if not batches:
            return
        service = self._service
        gas = HARVEST_TX_GAS + self._per_record * max(len(b) for b in batches)
        to = service.contract.address
        calls = [{"to": to, "data": self._calldata(b)} for b in batches]
        pendings = service.sender.send_many(calls, gas=gas)
        # All receipts fetched together; a node that stops answering raises
        # TransactionOutcomeUnknownError (the batches may be on chain: say so, don't retry).
        settled = service.sender.settle(pendings)
        for batch, result in zip(batches, settled, strict=True):
            if isinstance(result, TransactionError):
                self._retry_or_reject(batch, retry, _domain(result))
                continue
            self._settle(batch, result)

    @property
    def _per_record(self) -> int:
        """Gas bound of one record: a delivery also logs the lot shipped and received."""
        return HARVEST_RECORD_GAS + (DELIVERY_GAS if self._consignee else 0)

    def _calldata(self, batch: Sequence[int]) -> bytes:
        """recordHarvests, or recordDeliveries to the consignee, of the batch's records."""
        records = [self._records[i].as_tuple() for i in batch]
        if self._consignee is None:
            return calldata.record_harvests_data(records)
        return calldata.record_deliveries_data(records, self._consignee)

    def _retry_or_reject(self, batch: Sequence[int], retry: bool, error: TraceabilityError) -> None:
        """Re-check a failed batch and resend its valid records once; else reject them."""
        if not retry:
            for i in batch:
                self._mark(i, Outcome.REJECTED, str(error))
            self._progress(len(batch))
            return
        still_ok = self._precheck(list(batch))
        self._progress(len(batch) - len(still_ok))
        self._send([still_ok], retry=False)

    def _settle(self, batch: Sequence[int], receipt: TxReceipt) -> None:
        """Mark a mined batch's records recorded (or skipped, if a race got there first)."""
        self._report.transactions.append(bytes(receipt["transactionHash"]))
        self._report.gas_used += receipt["gasUsed"]
        skipped = _skipped_lots(receipt, self._service.decoder.topic("HarvestSkipped"))
        for i in batch:
            if self._lots[i] in skipped:
                self._mark(
                    i,
                    Outcome.DUPLICATE,
                    f"already recorded on chain as lot 0x{self._lots[i].hex()}",
                )
            else:
                self._mark(i, Outcome.RECORDED)
        self._progress(len(batch))
