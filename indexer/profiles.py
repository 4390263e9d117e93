"""Farmer digital profiles computed from indexed events only, valid at a stated block.

Every figure comes from the derived tables, which come from events, so a lender holding the
profile's `valid_at` block number and hash can re-derive it from the chain. Stored figures are
integers (grams, fen, 0.01 mu); ratios are Decimal, never float.

Definitions:
- season: the tea flush of the picking date in China time (indexer.seasons.season_of).
- kg per mu: a season's fresh leaf over the area of the plots harvested in it; in total, all
  fresh leaf over the area of all the farmer's plots.
- made tea: the made tea a processing step produced from fresh leaf, attributed to its
  fresh-leaf inputs by weight; made-tea ratio = made tea / fresh leaf.
- sale income: the price of each first sale along a lot's lineage, split over the harvests in
  the lot pro rata to their fresh-leaf grams (resales are not farmers' income).
- price: income per kg of the farmer's sold fresh leaf, against the same for the cooperative.
- consistency: coefficient of variation (stdev / mean) of harvest weights within a season,
  and of season totals across seasons in total.
- quality failures / recalls: failed attestations and recalls of lots containing their leaf.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from indexer.errors import IndexerError
from indexer.models import (
    Checkpoint,
    Consent,
    CoopSeason,
    Farmer,
    FarmerChange,
    FarmerIncident,
    FarmerSettlement,
    Harvest,
    HarvestYield,
    IndexedContract,
    IndexedLoanTerms,
    Loan,
    LoanEvent,
    LotSource,
    Plot,
    SaleShare,
    WindowBlock,
)
from indexer.seasons import season_sort_key

GRAMS_PER_KG = Decimal(1000)
CENTI_MU = Decimal(100)
RATIO = Decimal("0.0001")
KG = Decimal("0.001")


class FarmerNotFoundError(IndexerError):
    """No farmer with this id has been indexed."""


class PlotSummary(BaseModel):
    """One of the farmer's plots."""

    plot: str
    area_mu: Decimal
    variety: int


class GradeShare(BaseModel):
    """Fresh leaf of one grade."""

    grade: int
    grams: int
    share: Decimal


class Figures(BaseModel):
    """Production, sales and quality for one season or in total."""

    season: str
    harvests: int = 0
    fresh_leaf_grams: int = 0
    fresh_leaf_kg: Decimal = Decimal(0)
    grade_mix: list[GradeShare] = Field(default_factory=list)
    area_mu: Decimal = Decimal(0)
    kg_per_mu: Decimal | None = None
    made_tea_grams: int = 0
    made_tea_ratio: Decimal | None = None
    sold_fresh_grams: int = 0
    sale_income_fen: int = 0
    price_fen_per_kg: Decimal | None = None
    cooperative_price_fen_per_kg: Decimal | None = None
    price_vs_cooperative: Decimal | None = None
    consistency_cv: Decimal | None = None
    quality_failures: int = 0
    recalls: int = 0


class CreditHistory(BaseModel):
    """Loans and repayments from the lending contracts' events.

    `available` is false while no LoanFactory is indexed (then every count is zero because
    nothing could be known, not because nothing happened). A repayment is on time when made by
    the due date plus the grace days; days past due count from the due date while anything is
    outstanding (up to full repayment, or up to `valid_at` for open loans).
    """

    available: bool = False
    loans: int = 0
    open_loans: int = 0
    principal_fen: int = 0
    disbursed_fen: int = 0
    repaid_fen: int = 0
    outstanding_fen: int = 0
    on_time_repayments: int = 0
    late_repayments: int = 0
    max_days_past_due: int = 0
    current_days_past_due: int = 0
    defaults: int = 0
    sale_proceeds_fen: int = 0
    sale_proceeds_to_loans_fen: int = 0


class ValidAt(BaseModel):
    """The chain state a profile is derived from."""

    chain_id: int
    block_number: int
    block_hash: str
    timestamp: datetime | None = None
    """The block's timestamp (None if the indexer no longer holds the block's header)."""


class FarmerProfile(BaseModel):
    """Everything a lender may read about a farmer (with consent), derived from events."""

    farmer: str
    cooperative: str
    active: bool
    has_wallet: bool
    registered_block: int
    first_activity: datetime
    last_activity: datetime
    tenure_days: int
    plots: list[PlotSummary]
    total_area_mu: Decimal
    seasons: list[Figures]
    total: Figures
    credit: CreditHistory
    valid_at: ValidAt


@dataclass
class _Acc:
    """Running sums for one season."""

    harvests: int = 0
    grams: int = 0
    squares: int = 0
    grades: dict[int, int] = field(default_factory=dict)
    area_centi_mu: int = 0
    made: int = 0
    sold: int = 0
    income: int = 0
    failures: int = 0
    recalls: int = 0


def _hex(value: bytes) -> str:
    """0x-hex."""
    return "0x" + bytes(value).hex()


def _ratio(num: int | Decimal, den: int | Decimal, quantum: Decimal = RATIO) -> Decimal | None:
    """num / den as a rounded Decimal, None when den is zero."""
    if not den:
        return None
    return (Decimal(num) / Decimal(den)).quantize(quantum)


def _cv(n: int, total: int, squares: int) -> Decimal | None:
    """Population coefficient of variation from count, sum and sum of squares (exact ints)."""
    if n < 2 or total <= 0:
        return None
    variance = Decimal(n * squares - total * total) / Decimal(n * n)
    mean = Decimal(total) / Decimal(n)
    return (max(variance, Decimal(0)).sqrt() / mean).quantize(RATIO)


def load_profile(conn: Connection, farmer: bytes) -> FarmerProfile:
    """The farmer's profile as of the indexer's checkpoint (call inside one read transaction)."""
    checkpoint = conn.execute(
        select(Checkpoint.chain_id, Checkpoint.block_number, Checkpoint.block_hash)
    ).first()
    row = conn.execute(select(Farmer).where(Farmer.farmer == farmer)).first()  # type: ignore[arg-type]
    if row is None or checkpoint is None:
        raise FarmerNotFoundError(f"no farmer 0x{farmer.hex()} has been indexed")
    active, wallet = _status(conn, farmer, row.wallet)
    plots = conn.execute(
        select(Plot.plot, Plot.area_centi_mu, Plot.variety).where(Plot.farmer == farmer)  # type: ignore[arg-type]
    ).all()
    seasons, last_ts = _seasons(conn, farmer)
    coop = {
        s: (int(g), int(i))
        for s, g, i in conn.execute(
            select(CoopSeason.season, CoopSeason.fresh_grams, CoopSeason.income_fen).where(
                CoopSeason.cooperative == row.cooperative  # type: ignore[arg-type]
            )
        )
    }
    total_area = sum(int(p.area_centi_mu) for p in plots)
    figures = [
        _figures(s, acc, coop.get(s))
        for s, acc in sorted(seasons.items(), key=lambda x: season_sort_key(x[0]))
    ]
    first = datetime.fromtimestamp(row.block_timestamp, UTC)
    valid_ts = conn.execute(
        select(WindowBlock.timestamp).where(WindowBlock.number == checkpoint.block_number)  # type: ignore[arg-type]
    ).scalar()
    last = datetime.fromtimestamp(max(last_ts or 0, row.block_timestamp), UTC)
    return FarmerProfile(
        farmer=_hex(farmer),
        cooperative=_hex(row.cooperative),
        active=active,
        has_wallet=wallet is not None,
        registered_block=row.block_number,
        first_activity=first,
        last_activity=last,
        tenure_days=(last - first).days,
        plots=[
            PlotSummary(
                plot=_hex(p.plot), area_mu=Decimal(p.area_centi_mu) / CENTI_MU, variety=p.variety
            )
            for p in plots
        ],
        total_area_mu=Decimal(total_area) / CENTI_MU,
        seasons=figures,
        total=_total(seasons, total_area, coop),
        credit=_credit(conn, farmer, checkpoint.block_number),
        valid_at=ValidAt(
            chain_id=checkpoint.chain_id,
            block_number=checkpoint.block_number,
            block_hash=_hex(checkpoint.block_hash),
            timestamp=None if valid_ts is None else datetime.fromtimestamp(valid_ts, UTC),
        ),
    )


def _status(conn: Connection, farmer: bytes, wallet: bytes | None) -> tuple[bool, bytes | None]:
    """(active, wallet) after every change event."""
    active = True
    changes = conn.execute(
        select(FarmerChange.kind, FarmerChange.wallet)
        .where(FarmerChange.farmer == farmer)  # type: ignore[arg-type]
        .order_by(FarmerChange.block_number, FarmerChange.log_index)
    )
    for kind, new_wallet in changes:
        if kind == "wallet":
            wallet = new_wallet
        else:
            active = kind == "reactivated"
    return active, wallet


def _seasons(conn: Connection, farmer: bytes) -> tuple[dict[str, _Acc], int | None]:
    """Per-season sums from harvests, yields, sale shares and incidents."""
    acc: dict[str, _Acc] = defaultdict(_Acc)
    last_ts: int | None = None
    grades = conn.execute(
        select(
            Harvest.season,
            Harvest.grade,
            func.count(),
            func.sum(Harvest.grams),
            func.sum(Harvest.grams * Harvest.grams),
            func.max(Harvest.block_timestamp),
        )
        .where(Harvest.farmer == farmer)  # type: ignore[arg-type]
        .group_by(Harvest.season, Harvest.grade)
    )
    for season, grade, n, grams, squares, ts in grades:
        a = acc[season]
        a.harvests += n
        a.grams += int(grams)
        a.squares += int(squares)
        a.grades[grade] = int(grams)
        last_ts = max(last_ts or 0, int(ts))
    plots = (
        select(Harvest.season, Harvest.plot)
        .where(Harvest.farmer == farmer)  # type: ignore[arg-type]
        .distinct()
        .subquery()
    )
    harvested = (
        select(plots.c.season, func.sum(Plot.area_centi_mu))
        .join(
            Plot,
            Plot.plot == plots.c.plot,  # type: ignore[arg-type]
        )
        .group_by(plots.c.season)
    )
    for season, area in conn.execute(harvested):
        acc[season].area_centi_mu = int(area)
    _add_lineage(conn, farmer, acc)
    return acc, last_ts


def _add_lineage(conn: Connection, farmer: bytes, acc: dict[str, _Acc]) -> None:
    """Made tea, sale income and incidents attributed through lineage."""
    made = (
        select(HarvestYield.season, func.sum(HarvestYield.made_grams))
        .where(
            HarvestYield.farmer == farmer  # type: ignore[arg-type]
        )
        .group_by(HarvestYield.season)
    )
    for season, grams in conn.execute(made):
        acc[season].made = int(grams)
    sold = (
        select(SaleShare.season, func.sum(SaleShare.fresh_grams), func.sum(SaleShare.income_fen))
        .where(SaleShare.farmer == farmer)
        .group_by(SaleShare.season)
    )  # type: ignore[arg-type]
    for season, grams, income in conn.execute(sold):
        acc[season].sold, acc[season].income = int(grams), int(income)
    incidents = (
        select(FarmerIncident.season, FarmerIncident.kind, func.count())
        .where(
            FarmerIncident.farmer == farmer  # type: ignore[arg-type]
        )
        .group_by(FarmerIncident.season, FarmerIncident.kind)
    )
    for season, kind, n in conn.execute(incidents):
        if kind == "recall":
            acc[season].recalls = n
        else:
            acc[season].failures = n


def _price(a: _Acc, coop: tuple[int, int] | None) -> dict[str, Any]:
    """Price per kg sold, the cooperative's, and their ratio."""
    mine = _ratio(a.income * GRAMS_PER_KG, a.sold, Decimal("0.01"))
    theirs = _ratio(coop[1] * GRAMS_PER_KG, coop[0], Decimal("0.01")) if coop else None
    versus = _ratio(mine, theirs) if mine is not None and theirs else None
    return {
        "price_fen_per_kg": mine,
        "cooperative_price_fen_per_kg": theirs,
        "price_vs_cooperative": versus,
    }


def _base(season: str, a: _Acc, area: int, coop: tuple[int, int] | None) -> Figures:
    """Figures shared by a season and the total."""
    return Figures(
        season=season,
        harvests=a.harvests,
        fresh_leaf_grams=a.grams,
        fresh_leaf_kg=(Decimal(a.grams) / GRAMS_PER_KG).quantize(KG),
        grade_mix=[
            GradeShare(grade=g, grams=v, share=_ratio(v, a.grams) or Decimal(0))
            for g, v in sorted(a.grades.items())
        ],
        area_mu=Decimal(area) / CENTI_MU,
        kg_per_mu=_ratio(Decimal(a.grams) / GRAMS_PER_KG, Decimal(area) / CENTI_MU, KG),
        made_tea_grams=a.made,
        made_tea_ratio=_ratio(a.made, a.grams),
        sold_fresh_grams=a.sold,
        sale_income_fen=a.income,
        quality_failures=a.failures,
        recalls=a.recalls,
        **_price(a, coop),
    )


def _figures(season: str, a: _Acc, coop: tuple[int, int] | None) -> Figures:
    """One season: CV over its harvest weights."""
    figures = _base(season, a, a.area_centi_mu, coop)
    figures.consistency_cv = _cv(a.harvests, a.grams, a.squares)
    return figures


def _total(seasons: dict[str, _Acc], area: int, coop: dict[str, tuple[int, int]]) -> Figures:
    """All seasons together: CV over the season totals."""
    t = _Acc()
    for a in seasons.values():
        t.harvests += a.harvests
        t.grams += a.grams
        t.made += a.made
        t.sold += a.sold
        t.income += a.income
        t.failures += a.failures
        t.recalls += a.recalls
        for g, v in a.grades.items():
            t.grades[g] = t.grades.get(g, 0) + v
    coop_total = (sum(g for g, _ in coop.values()), sum(i for _, i in coop.values()))
    figures = _base("total", t, area, coop_total if coop else None)
    totals = [a.grams for a in seasons.values()]
    figures.consistency_cv = _cv(len(totals), sum(totals), sum(x * x for x in totals))
    return figures


LOAN_REPAID, LOAN_DEFAULTED, LOAN_WRITTEN_OFF, LOAN_CANCELLED = 5, 4, 6, 7
DAY = 86_400


@dataclass
class _LoanAcc:
    """Running figures of one loan."""

    principal: int
    total_due: int
    due_date: int
    grace_days: int
    funded: bool = False
    disbursed: int = 0
    repaid: int = 0
    on_time: int = 0
    late: int = 0
    paid_off_at: int | None = None
    status: int = 1
    defaulted: bool = False

    @property
    def outstanding(self) -> int:
        """What the escrow would say: what was drawn with its interest, pro rata and rounded
        down (floor(drawn x totalDue / principal), LoanEscrow._amountDue), less repayments."""
        if not self.funded or self.principal == 0:
            return 0
        return max(0, self.disbursed * self.total_due // self.principal - self.repaid)

    def apply(self, kind: str, amount: int | None, status: int | None, ts: int) -> None:
        """Fold one loan event in."""
        if kind == "funded":
            self.funded = True
        elif kind == "disbursed":
            self.disbursed += amount or 0
        elif kind == "repaid":
            self.repaid += amount or 0
            if ts <= self.due_date + self.grace_days * DAY:
                self.on_time += 1
            else:
                self.late += 1
            if self.outstanding == 0 and self.paid_off_at is None:
                self.paid_off_at = ts
        elif kind == "status" and status is not None:
            self.status = status
            self.defaulted |= status in (LOAN_DEFAULTED, LOAN_WRITTEN_OFF)

    def days_past_due(self, now: int) -> int:
        """Days after the due date with something outstanding."""
        end = self.paid_off_at if self.paid_off_at is not None else now
        if not self.funded or (self.paid_off_at is None and self.outstanding == 0):
            return 0
        return max(0, end - self.due_date) // DAY

    @property
    def open(self) -> bool:
        """Still running (not repaid, written off or cancelled)."""
        return self.status not in (LOAN_REPAID, LOAN_WRITTEN_OFF, LOAN_CANCELLED)


def _credit(conn: Connection, farmer: bytes, checkpoint: int) -> CreditHistory:
    """Credit history from loan, loan_event and farmer_settlement rows."""
    available = bool(
        conn.execute(
            select(func.count())
            .select_from(IndexedContract)
            .where(IndexedContract.contract == "LoanFactory")  # type: ignore[arg-type]
        ).scalar()
    )
    proceeds = conn.execute(
        select(
            func.coalesce(func.sum(FarmerSettlement.share_fen), 0),
            func.coalesce(func.sum(FarmerSettlement.repaid_fen), 0),
        ).where(FarmerSettlement.farmer == farmer)  # type: ignore[arg-type]
    ).one()
    loans = _loans(conn, farmer)
    now = (
        conn.execute(
            select(WindowBlock.timestamp).where(WindowBlock.number == checkpoint)  # type: ignore[arg-type]
        ).scalar()
        or 0
    )
    return CreditHistory(
        available=available,
        loans=len(loans),
        open_loans=sum(1 for x in loans if x.open),
        principal_fen=sum(x.principal for x in loans),
        disbursed_fen=sum(x.disbursed for x in loans),
        repaid_fen=sum(x.repaid for x in loans),
        outstanding_fen=sum(x.outstanding for x in loans if x.open),
        on_time_repayments=sum(x.on_time for x in loans),
        late_repayments=sum(x.late for x in loans),
        max_days_past_due=max((x.days_past_due(now) for x in loans), default=0),
        current_days_past_due=max((x.days_past_due(now) for x in loans if x.open), default=0),
        defaults=sum(1 for x in loans if x.defaulted),
        sale_proceeds_fen=int(proceeds[0]),
        sale_proceeds_to_loans_fen=int(proceeds[1]),
    )


def _loans(conn: Connection, farmer: bytes) -> list[_LoanAcc]:
    """Every loan of the farmer with its events folded in."""
    rows = conn.execute(
        select(
            Loan.loan_id,
            Loan.principal_fen,
            IndexedLoanTerms.total_due_fen,
            IndexedLoanTerms.due_date,
            IndexedLoanTerms.grace_days,
        )
        .outerjoin(IndexedLoanTerms, IndexedLoanTerms.loan_id == Loan.loan_id)  # type: ignore[arg-type]
        .where(Loan.farmer == farmer)  # type: ignore[arg-type]
        .order_by(Loan.loan_id)
    ).all()
    loans = {
        r.loan_id: _LoanAcc(
            r.principal_fen, r.total_due_fen or r.principal_fen, r.due_date or 0, r.grace_days or 0
        )
        for r in rows
    }
    if not loans:
        return []
    events = conn.execute(
        select(
            LoanEvent.loan_id,
            LoanEvent.kind,
            LoanEvent.amount_fen,
            LoanEvent.status,
            LoanEvent.block_timestamp,
        )
        .where(LoanEvent.loan_id.in_(list(loans)))  # type: ignore[attr-defined]
        .order_by(LoanEvent.block_number, LoanEvent.log_index)
    )
    for loan_id, kind, amount, status, ts in events:
        loans[loan_id].apply(kind, amount, status, ts)
    return list(loans.values())


def has_consent(conn: Connection, farmer: bytes, lender: bytes, now: int) -> bool:
    """True if the farmer's latest consent event for `lender` grants access beyond `now`."""
    row = conn.execute(
        select(Consent.granted, Consent.expires_at)
        .where(Consent.farmer == farmer, Consent.lender == lender)  # type: ignore[arg-type]
        .order_by(Consent.block_number.desc(), Consent.log_index.desc())  # type: ignore[attr-defined]
        .limit(1)
    ).first()
    return bool(row and row.granted and row.expires_at > now)


def farmer_ids(conn: Connection, limit: int | None = None) -> list[bytes]:
    """Indexed farmer ids (for listing and benchmarks)."""
    stmt = select(Farmer.farmer).order_by(Farmer.farmer)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [bytes(f) for (f,) in conn.execute(stmt)]


def farmer_weights(conn: Connection, lot: bytes) -> list[tuple[bytes, int]]:
    """Fresh-leaf grams per farmer inside `lot`, through lineage, sorted by farmer id.

    These are the weights SaleSettlement.commitShares expects (pro rata by contributed
    weight); empty for an unknown lot.
    """
    harvest = conn.execute(select(Harvest.farmer, Harvest.grams).where(Harvest.lot == lot)).first()  # type: ignore[arg-type]
    if harvest is not None:
        return [(bytes(harvest.farmer), int(harvest.grams))]
    rows = conn.execute(
        select(LotSource.farmer, func.sum(LotSource.grams))
        .where(LotSource.lot == lot)  # type: ignore[arg-type]
        .group_by(LotSource.farmer)
        .order_by(LotSource.farmer)
    )
    return [(bytes(f), int(g)) for f, g in rows]
