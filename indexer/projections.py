"""Projections: decoded events in chain order -> derived rows, inside the caller's transaction.

A handler is registered per event name (`@handles("HarvestRecorded")`), so the lending events
plug in the same way. Handlers only append rows tagged with the event's block number; anything
derived through lineage (lot composition, made-tea yield, sale shares, incidents) is computed at
the event from rows already written, which is what makes a rollback a plain delete and a rebuild
a plain replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, text
from sqlalchemy.engine import Connection

from chain.abi import DecodedLog
from chain.logs import RawLog
from indexer.db import BulkWriter
from indexer.models import (
    AGGREGATE_TABLES,
    DERIVED_TABLES,
    Anomaly,
    Consent,
    CoopSeason,
    Farmer,
    FarmerChange,
    FarmerIncident,
    FarmerSettlement,
    Harvest,
    HarvestYield,
    IndexedLoanTerms,
    Loan,
    LoanEvent,
    LotConsumed,
    LotMovement,
    LotProduced,
    LotSource,
    MerchantApproval,
    Plot,
    Quality,
    Recall,
    Sale,
    SaleShare,
    TokenTransfer,
)
from indexer.seasons import CHINA, allocate, season_of

INT64_MAX = 2**63 - 1
QUERY_CHUNK = 500  # ids per IN (...) query
CHINA_OFFSET = int(CHINA.utcoffset(None).total_seconds())  # fixed: China has no DST

Handler = Callable[["Projector", RawLog, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}


def handles(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler for one or more event names."""

    def register(fn: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = fn
        return fn

    return register


class OutOfRangeError(ValueError):
    """A value does not fit a 64-bit column; the event is kept raw and noted as an anomaly."""


def _i64(value: int) -> int:
    """Check that an integer fits a signed 64-bit column."""
    if not 0 <= value <= INT64_MAX:
        raise OutOfRangeError(f"value {value} does not fit a 64-bit column")
    return value


@dataclass(frozen=True)
class Source:
    """Fresh-leaf grams of one harvest lot inside some lot."""

    harvest_lot: bytes
    farmer: bytes
    cooperative: bytes
    season: str
    grams: int


@dataclass
class _Step:
    """A processing step being collected: its events are contiguous in one transaction."""

    process_id: bytes
    block_number: int
    inputs: list[tuple[bytes, int]] = field(default_factory=list)
    outputs: list[tuple[bytes, int]] = field(default_factory=list)
    output_logs: list[tuple[RawLog, dict[str, Any]]] = field(default_factory=list)


class Projector:
    """Applies decoded events to the derived tables through one connection (one transaction)."""

    def __init__(self) -> None:
        self._cooperative: dict[bytes, bytes] = {}  # farmer -> cooperative (never changes)
        self.w: BulkWriter | None = None
        self.conn: Connection | None = None
        self._step: _Step | None = None
        self._dirty_coop_seasons: set[tuple[bytes, str]] = set()
        self._seasons: dict[int, str] = {}  # China-time day number -> season
        self.projected = 0

    def reset(self) -> None:
        """Forget caches (after a rollback or a failed transaction)."""
        self._cooperative.clear()
        self._step = None
        self._dirty_coop_seasons.clear()

    # ------------------------------------------------------------------------------ driving

    def apply(self, conn: Connection, events: Sequence[DecodedLog]) -> None:
        """Project events (in chain order) and refresh the aggregates they touch."""
        self.conn, self.w = conn, BulkWriter(conn)
        try:
            self._prewarm(events)
            for event in events:
                self._one(event)
            self._finish_step()
            self.w.flush()
            self._refresh_coop_seasons()
        finally:
            self.conn, self.w = None, None

    def _one(self, event: DecodedLog) -> None:
        """Dispatch one event, closing a pending processing step first when it ends."""
        name = event.name
        step = self._step
        if step is not None and not (
            name in ("LotConsumed", "LotProduced") and event.args["processId"] == step.process_id
        ):
            self._finish_step()
        handler = HANDLERS.get(name)  # type: ignore[arg-type]
        if handler is None:
            return
        try:
            handler(self, event.log, event.args)
        except OutOfRangeError as exc:
            self.writer.add(Anomaly, (event.log.block_number, event.log.log_index, name, str(exc)))
        self.projected += 1

    @property
    def writer(self) -> BulkWriter:
        """The open batch's writer."""
        assert self.w is not None, "Projector used outside apply()"
        return self.w

    @property
    def db(self) -> Connection:
        """The open batch's connection, with every queued row written (read-your-writes)."""
        assert self.conn is not None and self.w is not None, "Projector used outside apply()"
        self.w.flush()
        return self.conn

    def _prewarm(self, events: Sequence[DecodedLog]) -> None:
        """Load the cooperatives of every farmer harvesting in this batch in a few queries."""
        wanted = {e.args["farmer"] for e in events if e.name == "HarvestRecorded"}
        missing = list(wanted - self._cooperative.keys())
        for chunk in _chunks(missing, QUERY_CHUNK):
            stmt = select(Farmer.farmer, Farmer.cooperative).where(Farmer.farmer.in_(chunk))  # type: ignore[attr-defined]
            self._cooperative.update((f, c) for f, c in self.db.execute(stmt))

    def season(self, timestamp: int) -> str:
        """season_of(timestamp), computed once per China-time day (it depends on the day only)."""
        day = (timestamp + CHINA_OFFSET) // 86_400
        name = self._seasons.get(day)
        if name is None:
            name = self._seasons[day] = season_of(timestamp)
        return name

    def cooperative_of(self, farmer: bytes) -> bytes | None:
        """The farmer's cooperative, from the cache or the database."""
        coop = self._cooperative.get(farmer)
        if coop is None:
            stmt = select(Farmer.cooperative).where(Farmer.farmer == farmer)
            coop = self.db.execute(stmt).scalar()
            if coop is not None:
                self._cooperative[farmer] = coop
        return coop

    # ------------------------------------------------------------------------------ lineage

    def sources(self, lots: Sequence[bytes]) -> dict[bytes, list[Source]]:
        """Fresh-leaf composition of lots: a harvest lot is its own source."""
        found: dict[bytes, list[Source]] = {lot: [] for lot in lots}
        for chunk in _chunks(list(found), QUERY_CHUNK):
            harvests = select(
                Harvest.lot, Harvest.farmer, Harvest.cooperative, Harvest.season, Harvest.grams
            ).where(Harvest.lot.in_(chunk))  # type: ignore[attr-defined]
            for lot, farmer, coop, season, grams in self.db.execute(harvests):
                found[lot].append(Source(lot, farmer, coop, season, grams))
            made = (
                select(
                    LotSource.lot,
                    LotSource.harvest_lot,
                    LotSource.farmer,
                    LotSource.cooperative,
                    LotSource.season,
                    LotSource.grams,
                )
                .where(LotSource.lot.in_(chunk))  # type: ignore[attr-defined]
                .order_by(LotSource.lot, LotSource.harvest_lot)
            )
            for lot, h, farmer, coop, season, grams in self.db.execute(made):
                found[lot].append(Source(h, farmer, coop, season, grams))
        return found

    def _finish_step(self) -> None:
        """Write lineage rows of a completed processing step."""
        step, self._step = self._step, None
        if step is None or not step.outputs:
            return
        input_lots = [lot for lot, _ in step.inputs]
        composition = self.sources(input_lots)
        fresh = [(lot, g) for lot, g in step.inputs if _is_harvest(composition[lot], lot)]
        made_in = sum(g for lot, g in step.inputs if not _is_harvest(composition[lot], lot))
        out_total = sum(g for _, g in step.outputs)
        self._write_yield(step, composition, fresh, max(0, out_total - made_in))
        self._write_sources(step, composition)
        upstream_sold = self._any_sold(input_lots)
        for log, args in step.output_logs:
            self.writer.add(
                LotProduced,
                (args["lot"], args["processId"], args["processor"], _i64(args["grams"]),
                 args["dataHash"], upstream_sold, log.block_number, log.log_index),
            )  # fmt: skip

    def _write_yield(
        self,
        step: _Step,
        composition: dict[bytes, list[Source]],
        fresh: list[tuple[bytes, int]],
        made_from_fresh: int,
    ) -> None:
        """Made tea of the step attributed to its fresh-leaf inputs by their grams."""
        for lot, made in allocate(made_from_fresh, fresh):
            src = composition[lot][0]
            self.writer.add(
                HarvestYield,
                (lot, src.farmer, src.season, step.process_id, made, step.block_number),
            )

    def _write_sources(self, step: _Step, composition: dict[bytes, list[Source]]) -> None:
        """Each harvest's grams in the inputs, split over the outputs by output grams."""
        merged: dict[bytes, Source] = {}
        for lot, _ in step.inputs:
            for src in composition[lot]:
                prev = merged.get(src.harvest_lot)
                grams = src.grams + (prev.grams if prev else 0)
                merged[src.harvest_lot] = Source(
                    src.harvest_lot, src.farmer, src.cooperative, src.season, grams
                )
        for h in sorted(merged):
            src = merged[h]
            for out, grams in allocate(src.grams, step.outputs):
                if grams:
                    self.writer.add(
                        LotSource,
                        (out, h, src.farmer, src.cooperative, src.season, grams, step.block_number),
                    )

    def _any_sold(self, lots: Sequence[bytes]) -> bool:
        """True if any of the lots was sold, or was made from something sold."""
        for chunk in _chunks(list(lots), QUERY_CHUNK):
            sold = select(func.count()).select_from(Sale).where(Sale.lot.in_(chunk))  # type: ignore[attr-defined]
            upstream = (
                select(func.count())
                .select_from(LotProduced)
                .where(
                    LotProduced.lot.in_(chunk),  # type: ignore[attr-defined]
                    LotProduced.upstream_sold.is_(True),  # type: ignore[attr-defined]
                )
            )
            if self.db.execute(sold).scalar() or self.db.execute(upstream).scalar():
                return True
        return False

    def incident(self, log: RawLog, lot: bytes, kind: str) -> None:
        """Note a failed attestation or recall on every (farmer, season) whose leaf is in `lot`."""
        touched = sorted({(s.farmer, s.season) for s in self.sources([lot])[lot]})
        for farmer, season in touched:
            self.writer.add(
                FarmerIncident, (log.block_number, log.log_index, farmer, season, kind, lot)
            )

    # ---------------------------------------------------------------------------- aggregates

    def _refresh_coop_seasons(self) -> None:
        """Recompute the cooperative-season sums this batch touched."""
        if not self._dirty_coop_seasons:
            return
        conn = self.db
        for coop, season in sorted(self._dirty_coop_seasons):
            conn.execute(
                delete(CoopSeason).where(
                    CoopSeason.cooperative == coop,  # type: ignore[arg-type]
                    CoopSeason.season == season,  # type: ignore[arg-type]
                )
            )
            conn.execute(
                _coop_season_insert(SaleShare.cooperative == coop, SaleShare.season == season)
            )  # type: ignore[arg-type]
        self._dirty_coop_seasons.clear()


def _coop_season_insert(*where: Any) -> Any:
    """INSERT INTO coop_season SELECT sums of sale shares (optionally filtered)."""
    sums = (
        select(
            SaleShare.cooperative,
            SaleShare.season,
            func.sum(SaleShare.fresh_grams),
            func.sum(SaleShare.income_fen),
        )
        .where(*where)
        .group_by(SaleShare.cooperative, SaleShare.season)
    )
    columns = ["cooperative", "season", "fresh_grams", "income_fen"]
    return insert(CoopSeason).from_select(columns, sums)


def recompute_aggregates(conn: Connection) -> None:
    """Rebuild every aggregate table from the derived rows."""
    for table in AGGREGATE_TABLES:
        conn.execute(delete(table))
    conn.execute(_coop_season_insert())


def rollback_derived(conn: Connection, ancestor: int) -> None:
    """Delete every derived row made after block `ancestor`, then recompute the aggregates."""
    for table in DERIVED_TABLES:
        block = table.__table__.c.block_number  # type: ignore[attr-defined]
        conn.execute(delete(table).where(block > bindparam("a")), {"a": ancestor})
    recompute_aggregates(conn)


def clear_derived(conn: Connection) -> None:
    """Empty every derived and aggregate table (before a rebuild)."""
    for table in (*DERIVED_TABLES, *AGGREGATE_TABLES):
        conn.execute(text(f"DELETE FROM {table.__tablename__}"))  # type: ignore[attr-defined]


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Consecutive slices."""
    return (items[i : i + size] for i in range(0, len(items), size))


def _is_harvest(sources: list[Source], lot: bytes) -> bool:
    """True if the lot is itself a harvest (fresh-leaf) lot."""
    return len(sources) == 1 and sources[0].harvest_lot == lot


# ================================================================================== handlers
# Traceability (ITeaTrace, IConsentRegistry). Lending events plug in below the same way.


@handles("FarmerRegistered")
def _farmer_registered(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    wallet = a["wallet"] if any(a["wallet"]) else None
    p.writer.add(
        Farmer,
        (
            a["farmer"],
            a["cooperative"],
            wallet,
            log.block_number,
            log.log_index,
            log.block_timestamp,
        ),
    )
    p._cooperative[a["farmer"]] = a["cooperative"]


@handles("FarmerWalletChanged")
def _farmer_wallet_changed(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    wallet = a["wallet"] if any(a["wallet"]) else None
    p.writer.add(FarmerChange, (log.block_number, log.log_index, a["farmer"], "wallet", wallet))


@handles("FarmerDeactivated")
def _farmer_deactivated(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(FarmerChange, (log.block_number, log.log_index, a["farmer"], "deactivated", None))


@handles("FarmerReactivated")
def _farmer_reactivated(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(FarmerChange, (log.block_number, log.log_index, a["farmer"], "reactivated", None))


@handles("PlotRegistered")
def _plot_registered(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        Plot,
        (a["plot"], a["farmer"], a["cooperative"], _i64(a["areaCentiMu"]), _i64(a["variety"]),
         a["locationHash"], log.block_number, log.log_index),
    )  # fmt: skip


@handles("HarvestRecorded")
def _harvest_recorded(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    farmer = a["farmer"]
    coop = p.cooperative_of(farmer)
    if coop is None:
        raise OutOfRangeError(f"harvest of unregistered farmer 0x{farmer.hex()}")
    picked = _i64(a["pickedAt"])
    p.writer.add(
        Harvest,
        (a["lot"], farmer, a["plot"], coop, _i64(a["grams"]), _i64(a["grade"]), picked,
         p.season(picked), a["dataHash"], log.block_number, log.log_index, log.block_timestamp),
    )  # fmt: skip


@handles("LotConsumed")
def _lot_consumed(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    grams = _i64(a["grams"])
    p.writer.add(
        LotConsumed,
        (log.block_number, log.log_index, a["lot"], a["processId"], a["processor"], grams),
    )
    if p._step is None:
        p._step = _Step(a["processId"], log.block_number)
    p._step.inputs.append((a["lot"], grams))


@handles("LotProduced")
def _lot_produced(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    if p._step is None:  # outputs without inputs cannot happen on TeaTrace; keep it safe
        p._step = _Step(a["processId"], log.block_number)
    p._step.outputs.append((a["lot"], _i64(a["grams"])))
    p._step.output_logs.append((log, a))


@handles("LotShipped")
def _lot_shipped(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        LotMovement, (log.block_number, log.log_index, a["lot"], "shipped", a["from"], a["to"])
    )


@handles("LotReceived")
def _lot_received(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        LotMovement, (log.block_number, log.log_index, a["lot"], "received", None, a["receiver"])
    )


@handles("LotSold")
def _lot_sold(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    lot, price = a["lot"], _i64(a["priceFen"])
    first = not p._any_sold([lot])
    p.writer.add(
        Sale,
        (log.block_number, log.log_index, lot, a["seller"], a["buyer"], price, first,
         log.block_timestamp),
    )  # fmt: skip
    if not first:
        return  # a resale: the farmers' leaf was already paid for by the first sale
    sources = p.sources([lot])[lot]
    shares = allocate(price, [(s, s.grams) for s in sources])
    for src, income in shares:
        p.writer.add(
            SaleShare,
            (log.block_number, log.log_index, src.harvest_lot, src.farmer, src.cooperative,
             src.season, src.grams, income),
        )  # fmt: skip
        p._dirty_coop_seasons.add((src.cooperative, src.season))


@handles("QualityAttested")
def _quality_attested(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        Quality,
        (log.block_number, log.log_index, a["lot"], a["inspector"], _i64(a["grade"]), a["passed"],
         a["certificateHash"]),
    )  # fmt: skip
    if not a["passed"]:
        p.incident(log, a["lot"], "quality_failure")


@handles("LotRecalled")
def _lot_recalled(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        Recall, (log.block_number, log.log_index, a["lot"], a["inspector"], a["reasonHash"])
    )
    p.incident(log, a["lot"], "recall")


@handles("ConsentGranted")
def _consent_granted(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        Consent,
        (log.block_number, log.log_index, a["farmer"], a["lender"], a["wallet"],
         _i64(a["expiresAt"]), True),
    )  # fmt: skip


@handles("ConsentRevoked")
def _consent_revoked(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        Consent, (log.block_number, log.log_index, a["farmer"], a["lender"], a["wallet"], 0, False)
    )


# ------------------------------------------------------------------------------------ lending
# ILoanFactory, ILoanEscrow (one clone per loan, followed once LoanIssued names it) and
# ISaleSettlement. Amounts are fen.


def _loan_event(
    p: Projector,
    log: RawLog,
    loan_id: int,
    kind: str,
    amount: int | None = None,
    party: bytes | None = None,
    **extra: Any,
) -> None:
    """Append one loan_event row."""
    p.writer.add(
        LoanEvent,
        (log.block_number, log.log_index, _i64(loan_id), kind,
         None if amount is None else _i64(amount), party, extra.get("category"),
         extra.get("order_id"), extra.get("status"), extra.get("outstanding"),
         extra.get("reference"), log.block_timestamp),
    )  # fmt: skip


@handles("LoanIssued")
def _loan_issued(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        Loan,
        (_i64(a["loanId"]), a["escrow"], a["farmerId"], a["lender"], a["farmer"], a["agent"],
         _i64(a["principal"]), log.block_number, log.log_index, log.block_timestamp),
    )  # fmt: skip


@handles("LoanTermsRecorded")
def _loan_terms(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        IndexedLoanTerms,
        (_i64(a["loanId"]), _i64(a["totalDue"]), _i64(a["dueDate"]), _i64(a["drawDeadline"]),
         _i64(a["graceDays"]), _i64(a["defaultDays"]), _i64(a["mode"]), a["scheduleHash"],
         a["disclosureHash"], log.block_number),
    )  # fmt: skip


@handles("LoanBudgetSet")
def _loan_budget(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    _loan_event(p, log, a["loanId"], "budget", a["amount"], category=a["category"])


@handles("LoanStatusChanged")
def _loan_status(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    _loan_event(p, log, a["loanId"], "status", status=int(a["current"]))


@handles("LoanFunded")
def _loan_funded(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    _loan_event(p, log, a["loanId"], "funded", a["amount"], a["lender"])


@handles("PaymentOrdered")
def _payment_ordered(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    extra = {
        "category": a["category"],
        "order_id": _i64(a["orderId"]),
        "reference": a["invoiceHash"],
    }
    _loan_event(p, log, a["loanId"], "ordered", a["amount"], a["merchant"], **extra)


@handles("LoanDisbursed")
def _loan_disbursed(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    extra = {
        "category": a["category"],
        "order_id": _i64(a["orderId"]),
        "reference": a["invoiceHash"],
    }
    _loan_event(p, log, a["loanId"], "disbursed", a["amount"], a["merchant"], **extra)


@handles("PaymentCancelled")
def _payment_cancelled(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    _loan_event(p, log, a["loanId"], "cancelled", a["amount"], a["canceller"],
                order_id=_i64(a["orderId"]))  # fmt: skip


@handles("LoanUnspentReturned")
def _loan_returned(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    _loan_event(p, log, a["loanId"], "returned", a["amount"], a["lender"])


@handles("LoanRepaymentReceived")
def _loan_repaid(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    _loan_event(p, log, a["loanId"], "repaid", a["amount"], a["payer"],
                outstanding=_i64(a["outstanding"]))  # fmt: skip


@handles("FarmerShareSettled")
def _share_settled(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        FarmerSettlement,
        (log.block_number, log.log_index, _i64(a["saleId"]), a["farmerId"], a["escrow"],
         _i64(a["share"]), _i64(a["repaid"]), _i64(a["paidOut"]), _i64(a["held"])),
    )  # fmt: skip


# ------------------------------------------------------------------------ money and merchants
# IPaymentToken (an ERC-20: every movement of eCNY, the escrow and settlement events above say
# why) and IMerchantRegistry (when a merchant became payable, for the risk monitor).


@handles("Transfer")
def _token_transfer(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        TokenTransfer,
        (log.block_number, log.log_index, log.address, a["from"], a["to"], _i64(a["value"]),
         log.tx_hash, log.block_timestamp),
    )  # fmt: skip


@handles("MerchantApproved")
def _merchant_approved(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        MerchantApproval,
        (log.block_number, log.log_index, a["merchant"], a["category"], a["registrar"], True,
         min(a["expiresAt"], INT64_MAX), log.block_timestamp),  # uint256 max: never expires
    )  # fmt: skip


@handles("MerchantRevoked")
def _merchant_revoked(p: Projector, log: RawLog, a: dict[str, Any]) -> None:
    p.writer.add(
        MerchantApproval,
        (log.block_number, log.log_index, a["merchant"], a["category"], a["registrar"], False, 0,
         log.block_timestamp),
    )  # fmt: skip
