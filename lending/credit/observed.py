"""Fairness on real decisions: the fairness report over the credit store, not a simulation.

Which decisions count: the latest stored decision of every (farmer, lender) pair (by
decided_at, then the order stored), so a farmer who applied again is judged on the decision
in force. Groups: the farmer's cooperative (the indexer's `farmer` table) and any attribute the
operator gives off chain in a groups file (`farmer_id,<attr>...`), plus every pair of
attributes (intersections such as cooperative×gender). Checks, each with 95 % intervals:

* approval-rate ratio per attribute: lowest group rate / highest, passes at >= 0.80 (the
  four-fifths rule); `refer` is not approved. Group rates carry Wilson intervals, the ratio a
  Katz log interval (0.5 added to every cell when a count is 0);
* mean-limit ratio among approved decisions of the same score band AND income bucket: the
  approved decisions of a band are cut into `income_buckets` quantile buckets of the decision's
  verified trailing sale income (edges: the incomes at positions floor(k*n/q) of the sorted
  list, so equal incomes share a bucket); lowest group mean / highest, passes at >= 0.80.
  Means carry normal intervals, the ratio a delta-method interval on its logarithm;
* default rate by group (information, no threshold): an approved decision is joined to the
  first indexed loan of the same lender to the same farmer issued at or after the decision;
  defaulted when the escrow ever reported Defaulted (or WrittenOff, which follows it), repaid
  when it reported Repaid. Only loans with an outcome count in the rate; open and cancelled
  loans are reported beside it.

Pass or fail is decided exactly on the point ratios (fractions, as lending.credit.fairness);
the intervals say how sure that verdict is. Groups under `min_group_size` are listed with their
counts, never dropped; an attribute (or band cell) with fewer than two groups of that size is
"not enough data to judge", never a pass.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select
from sqlmodel import col

from chain.errors import NotTextError
from chain.text import decode_text
from indexer.models import Farmer, Loan, LoanEvent
from indexer.profiles import LOAN_CANCELLED, LOAN_DEFAULTED, LOAN_REPAID, LOAN_WRITTEN_OFF
from lending.credit.decision import DecisionRecord
from lending.credit.policy import Outcome
from lending.credit.store import CreditStore
from lending.errors import FairnessThresholdError, GroupsFileError
from lending.pricing.units import format_fen

COOPERATIVE = "cooperative"
"""The attribute read from the chain; a groups file cannot redefine it."""
JOIN = "×"
"""Joins two attributes (and their values) into an intersection."""
Z95 = Decimal("1.959963984540054")
"""Two-sided 95 % normal quantile."""
SELECTION = (
    "the latest decision per (farmer, lender) by decided_at (then the order stored); "
    "earlier decisions of the same pair are superseded and not counted"
)
_FARMER_ID = re.compile(r"0x[0-9a-f]{64}")
_PLACES = 4
_PREC = 40


class Verdict(StrEnum):
    """What a check concluded."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_ENOUGH_DATA = "not_enough_data"
    """Fewer than two groups of min_group_size: no verdict, which is not a pass."""


class LoanState(StrEnum):
    """The outcome of the loan joined to an approved decision."""

    DEFAULTED = "defaulted"
    REPAID = "repaid"
    OPEN = "open"
    CANCELLED = "cancelled"


class ObservedThresholds(BaseModel):
    """Lowest acceptable ratios, the smallest group judged and the income buckets per band."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    approval_ratio_min: Decimal = Decimal("0.80")
    limit_ratio_min: Decimal = Decimal("0.80")
    min_group_size: int = Field(default=30, gt=0)
    income_buckets: int = Field(default=3, ge=1, le=10)


class OperatorGroups(BaseModel):
    """Attributes the operator gives off chain: farmer id -> {attribute: value}."""

    model_config = ConfigDict(frozen=True)

    attributes: tuple[str, ...]
    values: dict[str, dict[str, str]]
    """Empty cells are left out: that farmer has no group for that attribute."""


class Interval(BaseModel):
    """A 95 % interval of a rate or ratio (low rounded down, high up)."""

    model_config = ConfigDict(frozen=True)

    low: Decimal
    high: Decimal


class FenInterval(BaseModel):
    """A 95 % interval of a mean limit, whole fen (low rounded down, high up)."""

    model_config = ConfigDict(frozen=True)

    low_fen: int
    high_fen: int


class ApprovalGroup(BaseModel):
    """One group's decisions and approval rate (Wilson interval)."""

    model_config = ConfigDict(frozen=True)

    group: str
    decisions: int
    approved: int
    approval_rate: Decimal
    ci: Interval
    judged: bool
    """At least min_group_size decisions: part of the ratio."""


class LimitGroup(BaseModel):
    """One group's approved decisions in a band cell and their mean limit."""

    model_config = ConfigDict(frozen=True)

    group: str
    approved: int
    mean_limit_fen: int
    """Rounded half-even to the fen; the ratio uses the exact mean."""
    ci: FenInterval | None
    """None for a single decision (no spread to estimate)."""
    judged: bool


class DefaultGroup(BaseModel):
    """One group's loans joined to its approved decisions and their default rate."""

    model_config = ConfigDict(frozen=True)

    group: str
    loans: int
    defaulted: int
    repaid: int
    open: int
    cancelled: int
    default_rate: Decimal | None
    """defaulted / (defaulted + repaid); None before any loan has an outcome."""
    ci: Interval | None
    judged: bool
    """At least min_group_size loans with an outcome."""


class RatioVerdict(BaseModel):
    """A lowest / highest ratio across the judged groups and its verdict."""

    model_config = ConfigDict(frozen=True)

    metric: str
    attribute: str
    verdict: Verdict
    ratio: Decimal | None
    """Rounded down for display; the verdict compares the exact value."""
    ratio_ci: Interval | None
    threshold: Decimal
    lowest: str | None
    highest: str | None
    ci_contains_threshold: bool | None
    """True when the interval straddles the threshold: the verdict could go either way."""

    @property
    def where(self) -> str:
        """Where the ratio was taken (overridden by band cells)."""
        return ""

    def describe(self) -> str:
        """One line, e.g. 'approval_rate ratio for cooperative 0.61 < 0.80 (lowest ...)'."""
        if self.verdict is Verdict.NOT_ENOUGH_DATA:
            return f"{self.metric} for {self.attribute}{self.where}: not enough data to judge"
        sign = ">=" if self.verdict is Verdict.PASSED else "<"
        ci = f" [95% CI {self.ratio_ci.low}-{self.ratio_ci.high}]" if self.ratio_ci else ""
        return (
            f"{self.metric} ratio for {self.attribute}{self.where} {self.ratio}{ci} {sign} "
            f"{self.threshold} (lowest {self.lowest}, highest {self.highest})"
        )


class ApprovalCheck(RatioVerdict):
    """Four-fifths check of approval rates across one attribute's groups."""

    groups: tuple[ApprovalGroup, ...]
    """Every group, judged or too small."""
    unassigned: int
    """Decisions of farmers with no value for the attribute."""


class LimitCheck(RatioVerdict):
    """Mean-limit ratio across one attribute's groups within one band and income bucket."""

    band: str
    income_bucket: int
    """1 (lowest incomes) to the number of buckets of the band."""
    income_low_fen: int
    income_high_fen: int
    """Lowest and highest trailing sale income of the bucket's approved decisions."""
    groups: tuple[LimitGroup, ...]
    unassigned: int

    @property
    def where(self) -> str:
        """The band and income bucket."""
        return f" in band {self.band} income bucket {self.income_bucket}"


class DefaultRates(BaseModel):
    """Default rates by group of one attribute (information: no threshold)."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    groups: tuple[DefaultGroup, ...]
    unassigned: int


class LoanOutcomes(BaseModel):
    """The loans joined to the counted approved decisions."""

    model_config = ConfigDict(frozen=True)

    approved_decisions: int
    loans: int
    defaulted: int
    repaid: int
    open: int
    cancelled: int


class ObservedFairnessReport(BaseModel):
    """Every check over the stored decisions; JSON for the web page, text for the CLI."""

    model_config = ConfigDict(frozen=True)

    selection: str = SELECTION
    decisions_stored: int
    decisions: int
    """Decisions counted (one per farmer and lender)."""
    approved: int
    referred: int
    declined: int
    approval_rate: Decimal | None
    model_versions: tuple[str, ...]
    attributes: tuple[str, ...]
    intersections: tuple[str, ...]
    thresholds: ObservedThresholds
    approval: tuple[ApprovalCheck, ...]
    limits: tuple[LimitCheck, ...]
    defaults: tuple[DefaultRates, ...]
    loans: LoanOutcomes
    verdict: Verdict
    """failed if any ratio fails; not_enough_data if an attribute's approval ratio could not
    be judged; else passed."""

    @property
    def failures(self) -> tuple[RatioVerdict, ...]:
        """Checks below their threshold."""
        return tuple(c for c in (*self.approval, *self.limits) if c.verdict is Verdict.FAILED)

    @property
    def passed(self) -> bool:
        """True when no judged check failed (checks without enough data do not fail)."""
        return not self.failures

    def raise_if_failed(self) -> ObservedFairnessReport:
        """Raise FairnessThresholdError naming every failed check."""
        if self.failures:
            raise FairnessThresholdError(self.failures)
        return self


@dataclass(frozen=True)
class ObservedDecision:
    """One counted decision with what the report groups and joins it by."""

    decision_id: str
    outcome: Outcome
    band: str
    limit_fen: int
    income_fen: int
    """The decision's verified trailing sale income (features.trailing_sale_income_fen)."""
    model_version: str
    groups: Mapping[str, str] = field(default_factory=dict)
    """Attribute -> group; attributes without a value are absent."""
    loan: LoanState | None = None


# ---------------------------------------------------------------------------- entry points


def observed_fairness(
    credit_engine: Engine,
    indexer_engine: Engine,
    groups: OperatorGroups | None = None,
    thresholds: ObservedThresholds | None = None,
) -> ObservedFairnessReport:
    """The report over the credit store's decisions, joined to the indexer's farmers and loans.

    The two engines may be the same database (the service's default)."""
    store = CreditStore(credit_engine)
    records = store.latest_decisions()
    farmers = {r.decision.farmer_id for r in records}
    coops = cooperatives(indexer_engine, farmers)
    loans = joined_loans(indexer_engine, [r for r in records if _approved(r)])
    operator = groups.values if groups else {}
    decisions = [
        _observed(r, coops.get(r.decision.farmer_id), operator.get(r.decision.farmer_id, {}),
                  loans.get(r.decision_id))
        for r in records
    ]  # fmt: skip
    attributes = (COOPERATIVE, *(groups.attributes if groups else ()))
    return observed_report(decisions, attributes, thresholds, store.decision_count())


def _approved(record: DecisionRecord) -> bool:
    """Only approved decisions become loans (lending.loans offers refuse the others)."""
    return record.decision.outcome is Outcome.APPROVE


def _observed(
    record: DecisionRecord,
    cooperative: str | None,
    operator: Mapping[str, str],
    loan: LoanState | None,
) -> ObservedDecision:
    """A stored record as the report sees it."""
    d = record.decision
    groups = dict(operator)
    if cooperative is not None:
        groups[COOPERATIVE] = cooperative
    return ObservedDecision(
        decision_id=record.decision_id,
        outcome=d.outcome,
        band=d.band,
        limit_fen=d.limit_fen,
        income_fen=d.features.trailing_sale_income_fen,
        model_version=d.model_version,
        groups=groups,
        loan=loan,
    )


def cooperatives(engine: Engine, farmer_ids: Iterable[str]) -> dict[str, str]:
    """Farmer id -> cooperative address (0x hex) from the indexer, for the farmers asked."""
    wanted = set(farmer_ids)
    stmt = select(col(Farmer.farmer), col(Farmer.cooperative))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    out = {}
    for farmer, coop in rows:
        key = "0x" + bytes(farmer).hex()
        if key in wanted:
            out[key] = "0x" + bytes(coop).hex()
    return out


def joined_loans(engine: Engine, records: Sequence[DecisionRecord]) -> dict[str, LoanState]:
    """Decision id -> outcome of the first indexed loan of the same lender to the same farmer
    issued at or after the decision (decisions without such a loan are absent)."""
    wanted = {(r.decision.farmer_id, r.lender) for r in records}
    order = (col(Loan.block_timestamp), col(Loan.block_number), col(Loan.log_index))
    loans = select(col(Loan.loan_id), col(Loan.farmer), col(Loan.lender),
                   col(Loan.block_timestamp)).order_by(*order)  # fmt: skip
    statuses = select(col(LoanEvent.loan_id), col(LoanEvent.status)).where(
        col(LoanEvent.kind) == "status"
    )
    with engine.connect() as conn:
        by_pair: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for loan_id, farmer, lender, at in conn.execute(loans).all():
            pair = ("0x" + bytes(farmer).hex(), "0x" + bytes(lender).hex())
            if pair in wanted:
                by_pair.setdefault(pair, []).append((at, loan_id))
        reported: dict[int, set[int]] = {}
        for loan_id, status in conn.execute(statuses).all():
            if status is not None:
                reported.setdefault(loan_id, set()).add(status)
    out = {}
    for r in records:
        issued = by_pair.get((r.decision.farmer_id, r.lender), [])
        decided = int(r.decided_at.astimezone(UTC).timestamp())
        first = next((loan_id for at, loan_id in issued if at >= decided), None)
        if first is not None:
            out[r.decision_id] = loan_state(reported.get(first, set()))
    return out


def loan_state(statuses: Iterable[int]) -> LoanState:
    """A loan's outcome from every status its escrow reported (ILoanEscrow.LoanStatus).

    Ever Defaulted (or WrittenOff, which only follows a default) is a default even if paid
    later; Repaid without a default is repaid; Cancelled before funding has no outcome."""
    seen = set(statuses)
    if seen & {LOAN_DEFAULTED, LOAN_WRITTEN_OFF}:
        return LoanState.DEFAULTED
    if LOAN_REPAID in seen:
        return LoanState.REPAID
    if LOAN_CANCELLED in seen:
        return LoanState.CANCELLED
    return LoanState.OPEN


# ---------------------------------------------------------------------------- groups file


def read_groups_file(path: Path) -> OperatorGroups:
    """An operator's groups file (UTF-8 with or without BOM, UTF-16 or GBK), validated."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise GroupsFileError(f"cannot read groups file {path}: {exc.strerror}") from None
    return groups_from_bytes(content, str(path))


def groups_from_bytes(content: bytes, name: str) -> OperatorGroups:
    """A groups file's bytes (a path's or an upload's), decoded and validated."""
    try:
        text = decode_text(content, name)
    except NotTextError as exc:
        raise GroupsFileError(str(exc)) from None
    return parse_groups(text, name)


def parse_groups(text: str, name: str = "groups file") -> OperatorGroups:
    """Groups from CSV text: header `farmer_id,<attr1>,...`, one row per farmer."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise GroupsFileError(f"{name} is not a readable CSV file: {exc}") from None
    lines = [
        (n, [c.strip() for c in row]) for n, row in enumerate(rows, 1) if any(map(str.strip, row))
    ]
    if not lines:
        raise GroupsFileError(f"{name} is empty: expected a header farmer_id,<attribute>,...")
    attributes = _attributes(lines[0][1], name)
    values: dict[str, dict[str, str]] = {}
    seen: dict[str, int] = {}
    width = len(attributes) + 1
    for line, row in lines[1:]:
        # Spreadsheets pad rows with empty cells; only non-empty cells must fit the header.
        cells = row[:width] if not any(row[width:]) else row
        if len(cells) != width:
            raise GroupsFileError(f"{name} line {line}: {len(cells)} cells, the header has {width}")
        farmer = cells[0].lower()
        if not _FARMER_ID.fullmatch(farmer):
            raise GroupsFileError(
                f"{name} line {line}: farmer id {cells[0][:80]!r} is not 0x + 64 hex digits "
                "(the pseudonymous on-chain id; never names or national ids)"
            )
        if farmer in seen:
            raise GroupsFileError(
                f"{name} line {line}: farmer {farmer} is already on line {seen[farmer]}; "
                "give each farmer one row"
            )
        seen[farmer] = line
        values[farmer] = {a: v for a, v in zip(attributes, cells[1:], strict=True) if v}
    if not values:
        raise GroupsFileError(f"{name} has a header but no farmers")
    return OperatorGroups(attributes=attributes, values=values)


def _attributes(header: list[str], name: str) -> tuple[str, ...]:
    """The attribute columns of a header that starts with (or holds) farmer_id."""
    header = [h.lstrip("\ufeff").strip() for h in header]
    while header and not header[-1]:  # a spreadsheet's empty trailing columns
        header.pop()
    if "farmer_id" not in (h.lower() for h in header):
        raise GroupsFileError(
            f"{name}: no farmer_id column in the header {','.join(header)[:200]!r}; expected "
            "farmer_id,<attribute>,..."
        )
    if header[0].lower() != "farmer_id":
        raise GroupsFileError(f"{name}: farmer_id must be the first column")
    attributes = header[1:]
    problems = [_column_problem(a, attributes) for a in attributes]
    problems = sorted({p for p in problems if p})
    if not attributes:
        problems.append("no attribute columns after farmer_id")
    if problems:
        raise GroupsFileError(f"{name}: {'; '.join(problems)}")
    return tuple(attributes)


def _column_problem(column: str, columns: Sequence[str]) -> str:
    """What is wrong with an attribute column's name ('' if nothing)."""
    if not column:
        return "an attribute column has no name"
    if column.lower() == COOPERATIVE:
        return f"{column!r} is reserved (the cooperative is read from the chain)"
    if column.lower() == "farmer_id":
        return "farmer_id is repeated"
    if JOIN in column:
        return f"{column!r} must not contain {JOIN!r} (it joins intersections)"
    if columns.count(column) > 1:
        return f"{column!r} is repeated"
    return ""


# ---------------------------------------------------------------------------- the report


def observed_report(
    decisions: Sequence[ObservedDecision],
    attributes: Sequence[str],
    thresholds: ObservedThresholds | None = None,
    decisions_stored: int | None = None,
) -> ObservedFairnessReport:
    """Every check over counted decisions, grouped by each attribute and each pair of them."""
    t = thresholds or ObservedThresholds()
    pairs = [(a, b) for a, b in itertools.combinations(attributes, 2)]
    names = [*attributes, *(a + JOIN + b for a, b in pairs)]
    keyed = [(d, _with_intersections(d.groups, pairs)) for d in decisions]
    approved = [(d, g) for d, g in keyed if d.outcome is Outcome.APPROVE]
    approval = tuple(_approval_check(a, keyed, t) for a in names)
    cells = _band_cells(approved, t.income_buckets)
    limits = tuple(_limit_check(a, cell, t) for cell in cells for a in names)
    loans = [(d, g) for d, g in approved if d.loan is not None]
    counts = {o: sum(d.outcome is o for d in decisions) for o in Outcome}
    return ObservedFairnessReport(
        decisions_stored=len(decisions) if decisions_stored is None else decisions_stored,
        decisions=len(decisions),
        approved=counts[Outcome.APPROVE],
        referred=counts[Outcome.REFER],
        declined=counts[Outcome.DECLINE],
        approval_rate=_rate(counts[Outcome.APPROVE], len(decisions)),
        model_versions=tuple(sorted({d.model_version for d in decisions})),
        attributes=tuple(attributes),
        intersections=tuple(names[len(attributes) :]),
        thresholds=t,
        approval=approval,
        limits=limits,
        defaults=tuple(_default_rates(a, loans, t) for a in names),
        loans=_loan_outcomes(len(approved), [d.loan for d, _ in loans]),
        verdict=_overall(approval, limits),
    )


def _with_intersections(
    groups: Mapping[str, str], pairs: Sequence[tuple[str, str]]
) -> dict[str, str]:
    """A decision's groups plus one per pair of attributes it has both values of."""
    out = dict(groups)
    for a, b in pairs:
        if a in groups and b in groups:
            out[a + JOIN + b] = groups[a] + JOIN + groups[b]
    return out


def _overall(approval: Sequence[ApprovalCheck], limits: Sequence[LimitCheck]) -> Verdict:
    """failed > not_enough_data (an attribute's approval ratio unjudged) > passed."""
    if any(c.verdict is Verdict.FAILED for c in (*approval, *limits)):
        return Verdict.FAILED
    if any(c.verdict is Verdict.NOT_ENOUGH_DATA for c in approval):
        return Verdict.NOT_ENOUGH_DATA
    return Verdict.PASSED


Keyed = tuple[ObservedDecision, Mapping[str, str]]


def _split(attribute: str, keyed: Sequence[Keyed]) -> tuple[dict[str, list[ObservedDecision]], int]:
    """(decisions by group of the attribute, how many have no group)."""
    groups: dict[str, list[ObservedDecision]] = {}
    unassigned = 0
    for d, g in keyed:
        if attribute in g:
            groups.setdefault(g[attribute], []).append(d)
        else:
            unassigned += 1
    return dict(sorted(groups.items())), unassigned


def _approval_check(attribute: str, keyed: Sequence[Keyed], t: ObservedThresholds) -> ApprovalCheck:
    """Four-fifths check of approval rates, Wilson per group, Katz for the ratio."""
    groups, unassigned = _split(attribute, keyed)
    counts = {
        g: (sum(d.outcome is Outcome.APPROVE for d in ds), len(ds)) for g, ds in groups.items()
    }
    judged = {g: c for g, c in counts.items() if c[1] >= t.min_group_size}
    rows = tuple(
        ApprovalGroup(group=g, decisions=n, approved=x, approval_rate=_share(x, n),
                      ci=wilson(x, n), judged=g in judged)
        for g, (x, n) in counts.items()
    )  # fmt: skip
    common = {"metric": "approval_rate", "attribute": attribute, "threshold": t.approval_ratio_min,
              "groups": rows, "unassigned": unassigned}  # fmt: skip
    if len(judged) < 2:
        return ApprovalCheck(**common, **_no_verdict())
    rates = {g: Fraction(x, n) for g, (x, n) in judged.items()}
    low, high = _extremes(rates)
    (x1, n1), (x2, n2) = judged[low], judged[high]
    ci = katz_interval(x1, n1, x2, n2)
    return ApprovalCheck(**common, **_verdict(rates, low, high, ci, t.approval_ratio_min))


@dataclass(frozen=True)
class _Cell:
    """Approved decisions of one band and income bucket."""

    band: str
    bucket: int
    members: list[Keyed]

    @property
    def income_range(self) -> tuple[int, int]:
        """Lowest and highest income of the cell."""
        incomes = [d.income_fen for d, _ in self.members]
        return min(incomes), max(incomes)


def _band_cells(approved: Sequence[Keyed], buckets: int) -> list[_Cell]:
    """Approved decisions cut by band, then by income quantile bucket within the band."""
    cells = []
    for band in sorted({d.band for d, _ in approved}):
        members = [(d, g) for d, g in approved if d.band == band]
        edges = income_edges([d.income_fen for d, _ in members], buckets)
        split: dict[int, list[Keyed]] = {}
        for d, g in members:
            split.setdefault(bisect.bisect_right(edges, d.income_fen), []).append((d, g))
        cells += [_Cell(band, i + 1, split[i]) for i in sorted(split)]
    return cells


def income_edges(incomes: Sequence[int], buckets: int) -> list[int]:
    """Lower edges of buckets 2..q: the incomes at positions floor(k*n/q) of the sorted list,
    repeated edges merged (so equal incomes always share a bucket)."""
    ordered = sorted(incomes)
    n = len(ordered)
    q = min(buckets, n)
    return sorted({ordered[k * n // q] for k in range(1, q)} - {ordered[0]}) if n else []


def _limit_check(attribute: str, cell: _Cell, t: ObservedThresholds) -> LimitCheck:
    """Mean-limit ratio across groups within one band cell, delta-method interval."""
    groups, unassigned = _split(attribute, cell.members)
    limits = {g: [d.limit_fen for d in ds] for g, ds in groups.items()}
    judged = {g: v for g, v in limits.items() if len(v) >= t.min_group_size}
    rows = tuple(
        LimitGroup(group=g, approved=len(v), mean_limit_fen=_fen(Fraction(sum(v), len(v))),
                   ci=mean_interval(v), judged=g in judged)
        for g, v in limits.items()
    )  # fmt: skip
    low_income, high_income = cell.income_range
    common = {"metric": "mean_limit_fen", "attribute": attribute, "threshold": t.limit_ratio_min,
              "band": cell.band, "income_bucket": cell.bucket, "income_low_fen": low_income,
              "income_high_fen": high_income, "groups": rows, "unassigned": unassigned}  # fmt: skip
    if len(judged) < 2:
        return LimitCheck(**common, **_no_verdict())
    means = {g: Fraction(sum(v), len(v)) for g, v in judged.items()}
    low, high = _extremes(means)
    ci = ratio_of_means_interval(judged[low], judged[high])
    return LimitCheck(**common, **_verdict(means, low, high, ci, t.limit_ratio_min))


def _default_rates(attribute: str, loans: Sequence[Keyed], t: ObservedThresholds) -> DefaultRates:
    """Default rate of each group's loans with an outcome, Wilson intervals."""
    groups, unassigned = _split(attribute, loans)
    rows = []
    for g, ds in groups.items():
        n = {s: sum(d.loan is s for d in ds) for s in LoanState}
        ended = n[LoanState.DEFAULTED] + n[LoanState.REPAID]
        rows.append(DefaultGroup(
            group=g, loans=len(ds), defaulted=n[LoanState.DEFAULTED], repaid=n[LoanState.REPAID],
            open=n[LoanState.OPEN], cancelled=n[LoanState.CANCELLED],
            default_rate=_rate(n[LoanState.DEFAULTED], ended),
            ci=wilson(n[LoanState.DEFAULTED], ended) if ended else None,
            judged=ended >= t.min_group_size,
        ))  # fmt: skip
    return DefaultRates(attribute=attribute, groups=tuple(rows), unassigned=unassigned)


def _loan_outcomes(approved: int, states: Sequence[LoanState | None]) -> LoanOutcomes:
    """Totals of the joined loans."""
    return LoanOutcomes(
        approved_decisions=approved,
        loans=len(states),
        defaulted=states.count(LoanState.DEFAULTED),
        repaid=states.count(LoanState.REPAID),
        open=states.count(LoanState.OPEN),
        cancelled=states.count(LoanState.CANCELLED),
    )


def _extremes(values: Mapping[str, Fraction]) -> tuple[str, str]:
    """(group with the lowest value, group with the highest): two groups even when all tie."""
    low = min(values, key=lambda g: values[g])
    return low, max(values, key=lambda g: (values[g], g != low))


def _no_verdict() -> dict[str, object]:
    """The verdict fields of a check without two judged groups."""
    return {"verdict": Verdict.NOT_ENOUGH_DATA, "ratio": None, "ratio_ci": None,
            "lowest": None, "highest": None, "ci_contains_threshold": None}  # fmt: skip


def _verdict(
    values: Mapping[str, Fraction], low: str, high: str, ci: Interval | None, threshold: Decimal
) -> dict[str, object]:
    """The verdict fields: the exact ratio against the threshold, the interval beside it."""
    ratio = values[low] / values[high] if values[high] else Fraction(1)
    passed = ratio >= Fraction(threshold)
    return {
        "verdict": Verdict.PASSED if passed else Verdict.FAILED,
        "ratio": _quantize(ratio, ROUND_FLOOR),
        "ratio_ci": ci,
        "lowest": low,
        "highest": high,
        "ci_contains_threshold": ci.low <= threshold <= ci.high if ci else None,
    }


# ---------------------------------------------------------------------------- statistics


def wilson(events: int, n: int, z: Decimal = Z95) -> Interval:
    """Wilson score interval of events / n (exactly 0 below for 0/n, 1 above for n/n)."""
    if n <= 0 or not 0 <= events <= n:
        raise ValueError(f"wilson interval of {events}/{n}")
    with localcontext() as ctx:
        ctx.prec = _PREC
        p = Decimal(events) / n
        z2 = z * z
        denom = 1 + z2 / n
        center = (p + z2 / (2 * n)) / denom
        half = z / denom * (p * (1 - p) / n + z2 / (4 * n * n)).sqrt()
        low = Decimal(0) if events == 0 else max(Decimal(0), center - half)
        high = Decimal(1) if events == n else min(Decimal(1), center + half)
    return Interval(low=_quantize(low, ROUND_FLOOR), high=_quantize(high, ROUND_CEILING))


def katz_interval(x1: int, n1: int, x2: int, n2: int, z: Decimal = Z95) -> Interval | None:
    """Katz log interval of (x1/n1) / (x2/n2); 0.5 is added to every cell of both 2x2 rows when
    a count is zero (Haldane). None when both rates are 0 (the ratio is defined as 1)."""
    if x1 == 0 and x2 == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = _PREC
        a, b, c, d = (Decimal(v) for v in (x1, n1, x2, n2))
        if x1 == 0 or x2 == 0:
            a, b, c, d = a + Decimal("0.5"), b + 1, c + Decimal("0.5"), d + 1
        log_ratio = ((a / b) / (c / d)).ln()
        se = (1 / a - 1 / b + 1 / c - 1 / d).sqrt()
        return _ratio_interval(log_ratio, se, z)


def mean_interval(values: Sequence[int], z: Decimal = Z95) -> FenInterval | None:
    """Normal interval of a mean in fen (mean +- z s / sqrt(n)); None under two values."""
    n = len(values)
    if n < 2:
        return None
    with localcontext() as ctx:
        ctx.prec = _PREC
        mean, var = _mean_var(values)
        half = z * (var / n).sqrt()
        low = max(Decimal(0), mean - half).to_integral_value(ROUND_FLOOR)
        high = (mean + half).to_integral_value(ROUND_CEILING)
    return FenInterval(low_fen=int(low), high_fen=int(high))


def ratio_of_means_interval(
    low: Sequence[int], high: Sequence[int], z: Decimal = Z95
) -> Interval | None:
    """Delta-method interval of mean(low) / mean(high) on the log scale:
    var(log ratio) ~ s1^2 / (n1 m1^2) + s2^2 / (n2 m2^2). None if a mean is 0 or n < 2."""
    if len(low) < 2 or len(high) < 2:
        return None
    with localcontext() as ctx:
        ctx.prec = _PREC
        (m1, v1), (m2, v2) = _mean_var(low), _mean_var(high)
        if m1 == 0 or m2 == 0:
            return None
        se = (v1 / (len(low) * m1 * m1) + v2 / (len(high) * m2 * m2)).sqrt()
        return _ratio_interval((m1 / m2).ln(), se, z)


def _mean_var(values: Sequence[int]) -> tuple[Decimal, Decimal]:
    """Mean and sample variance (n - 1), computed from exact integer sums."""
    n = len(values)
    total = sum(values)
    squares = n * sum(v * v for v in values) - total * total
    return Decimal(total) / n, Decimal(squares) / (n * (n - 1))


def _ratio_interval(log_ratio: Decimal, se: Decimal, z: Decimal) -> Interval:
    """exp(log ratio -+ z se), rounded outwards."""
    low, high = (log_ratio - z * se).exp(), (log_ratio + z * se).exp()
    return Interval(low=_quantize(low, ROUND_FLOOR), high=_quantize(high, ROUND_CEILING))


def _rate(events: int, n: int) -> Decimal | None:
    """events / n rounded half-even for display, None for n = 0."""
    return _quantize(Fraction(events, n), ROUND_HALF_EVEN) if n else None


def _share(events: int, n: int) -> Decimal:
    """events / n (n > 0) rounded half-even for display."""
    return _quantize(Fraction(events, n), ROUND_HALF_EVEN)


def _fen(value: Fraction) -> int:
    """A mean amount as whole fen, half-even."""
    return round(value)


def _quantize(value: Fraction | Decimal, rounding: str) -> Decimal:
    """A metric with four decimals; ratios are rounded down so a failing one never shows equal."""
    with localcontext() as ctx:
        ctx.prec = _PREC
        exact = (
            Decimal(value.numerator) / Decimal(value.denominator)
            if isinstance(value, Fraction)
            else value
        )
        return exact.quantize(Decimal(1).scaleb(-_PLACES), rounding=rounding)


# ---------------------------------------------------------------------------- text


def render_observed(report: ObservedFairnessReport) -> str:
    """The report as text: counts, every approval check with its groups, judged limit cells,
    default rates, and the verdict."""
    t = report.thresholds
    lines = [
        f"Fairness on real decisions — {report.decisions:,} decisions counted of "
        f"{report.decisions_stored:,} stored",
        f"  Counted: {report.selection}",
        f"  Approved {report.approved:,}, referred {report.referred:,}, declined "
        f"{report.declined:,} (approval rate {report.approval_rate or '-'}; refer is not approved)",
        f"  Models: {', '.join(v[:12] for v in report.model_versions) or '-'}",
        f"  Thresholds: approval ratio >= {t.approval_ratio_min}; mean-limit ratio >= "
        f"{t.limit_ratio_min} within band and income bucket ({t.income_buckets} per band); "
        f"groups of at least {t.min_group_size} are judged",
        f"  Attributes: {', '.join(report.attributes)}; intersections: "
        f"{', '.join(report.intersections) or '-'}",
        "",
        "  Approval-rate ratio (lowest / highest group; 95% CI: Wilson per group, Katz ratio)",
    ]
    for c in report.approval:
        lines.append("    " + _verdict_line(c))
        lines += [
            f"      {g.group:<48} {g.approved:>6,}/{g.decisions:<6,} {g.approval_rate}  "
            f"[{g.ci.low}, {g.ci.high}]{'' if g.judged else '  too small'}"
            for g in c.groups
        ]
        if c.unassigned:
            lines.append(f"      (no {c.attribute}: {c.unassigned:,} decisions)")
    lines += ["", "  Mean-limit ratio within band and income bucket (judged cells)"]
    judged = [c for c in report.limits if c.verdict is not Verdict.NOT_ENOUGH_DATA]
    for c in judged:
        low = next(g for g in c.groups if g.group == c.lowest)
        high = next(g for g in c.groups if g.group == c.highest)
        lines.append(
            f"    {_verdict_line(c)}: {low.group} ¥{format_fen(low.mean_limit_fen)} (n "
            f"{low.approved}) / {high.group} ¥{format_fen(high.mean_limit_fen)} (n {high.approved})"
        )
    unjudged = len(report.limits) - len(judged)
    if unjudged:
        lines.append(
            f"    {unjudged:,} band cell checks: not enough data to judge (fewer than two groups "
            f"of {t.min_group_size} approved decisions; listed in --json)"
        )
    lines += _default_lines(report)
    lines += ["", "  " + _summary(report)]
    return "\n".join(lines)


def _verdict_line(c: RatioVerdict) -> str:
    """One check's ratio, interval and verdict."""
    where = f" band {c.band} income {c.income_bucket}" if isinstance(c, LimitCheck) else ""
    name = f"{c.attribute}{where}"
    if c.verdict is Verdict.NOT_ENOUGH_DATA:
        return f"{name:<40} not enough data to judge"
    mark = "ok" if c.verdict is Verdict.PASSED else "FAIL"
    ci = f"[{c.ratio_ci.low}, {c.ratio_ci.high}]" if c.ratio_ci else "[-]"
    unsure = "  (CI straddles the threshold)" if c.ci_contains_threshold else ""
    return f"{name:<40} {c.ratio} {ci} {mark}{unsure}"


def _default_lines(report: ObservedFairnessReport) -> list[str]:
    """Default rates by group of the joined loans."""
    lo = report.loans
    lines = [
        "",
        f"  Default rate of the loans issued from approved decisions ({lo.loans:,} loans of "
        f"{lo.approved_decisions:,} approved decisions: {lo.defaulted:,} defaulted, "
        f"{lo.repaid:,} repaid, {lo.open:,} still open, {lo.cancelled:,} cancelled; the rate "
        "counts only loans with an outcome; 95% CI Wilson)",
    ]
    for rates in report.defaults:
        if not rates.groups:
            continue
        lines.append(f"    {rates.attribute}")
        for g in rates.groups:
            rate = (
                f"{g.default_rate} [{g.ci.low}, {g.ci.high}]"
                if g.default_rate is not None and g.ci is not None
                else "no outcome yet"
            )
            lines.append(
                f"      {g.group:<48} {g.defaulted:>5,}/{g.defaulted + g.repaid:<5,} {rate}; "
                f"{g.open:,} open{'' if g.judged else '  too small'}"
            )
    return lines


def _summary(report: ObservedFairnessReport) -> str:
    """The last line: the verdict."""
    if report.verdict is Verdict.FAILED:
        return f"FAILED: {len(report.failures)} ratio(s) below threshold"
    if report.verdict is Verdict.NOT_ENOUGH_DATA:
        unjudged = [c.attribute for c in report.approval if c.verdict is Verdict.NOT_ENOUGH_DATA]
        return f"NOT ENOUGH DATA to judge: {', '.join(unjudged)} (nothing judged failed)"
    return "PASSED"
