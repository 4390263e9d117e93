"""Implausible harvests (`harvest_implausible`): records that inflate what a farmer can repay.

(a) Plot yield: a plot's fresh leaf in a season (its harvests' grams over its area) in kg per mu,
against its cooperative's plots that season. Reported above max(median + `mad_k` x MAD,
`min_yield_ratio` x median), judged only when the cooperative-season has at least `min_plots`
plots with harvests (fewer: nothing is said about them).

(b) Processing yield pinned at the bound: TeaTrace refuses a step whose made tea exceeds
fresh leaf x maxYieldBps (3000 = 30% unless a MaxYieldChanged event says otherwise; real
withering and rolling give 20-25%). A processor with at least `min_steps` steps from fresh leaf
of which at least `min_pinned_share` yield within `bound_tolerance` (relative) of the bound in
force is reported: made tea booked at the ceiling, not weighed.

(c) Over-pledged lot: for each lot still held (neither sold nor consumed by a later step), its
plausible value is the fresh leaf in it (lot_source; a fresh lot is its own source) priced at its
cooperative-season's average (coop_season income_fen / fresh_grams). Each farmer with leaf in it
owes what the escrows say is outstanding on their open loans overdue or falling due within
`pledge_horizon_days` (drawn x total due / principal, less repayments: what the held tea must
pay now; a loan due later is repaid from tea not yet picked); that debt is spread over the
farmer's held lots by value. A lot whose share of debts exceeds `max_pledge_ratio` x its value
is reported. A lot with leaf of a cooperative-season that has sold nothing yet cannot be priced
and is skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from sqlalchemy import select
from sqlalchemy.engine import Connection

from indexer.models import (
    CoopSeason,
    Harvest,
    LotConsumed,
    LotProduced,
    LotSource,
    Plot,
    RawEvent,
    Sale,
)
from lending.pricing.units import format_fen
from risk.figures import decimal_str, median
from risk.rules import DAY, Evidence, Finding, ScanContext, hexid, rule
from traceability.contracts import DEFAULT_MAX_YIELD_BPS

BPS = 10_000
"""TeaTrace.BPS: the yield bound's denominator."""
MAX_YIELD_EVENT = "MaxYieldChanged"
"""ITeaTrace.MaxYieldChanged(previousBps, newBps): the bound from that block on."""
GRAMS_PER_KG = 1000
CENTI_MU_PER_MU = 100


@dataclass
class Step:
    """One processing step: its processor, fresh leaf in, made tea from that leaf, outputs."""

    process_id: bytes
    processor: bytes = b""
    block: int = 0
    log_index: int = 0
    fresh_in: int = 0
    made_in: int = 0
    out: int = 0
    outputs: list[bytes] = field(default_factory=list)

    @property
    def made_from_fresh(self) -> int:
        """Made tea beyond the made-tea inputs (what the fresh leaf yielded)."""
        return max(0, self.out - self.made_in)


@rule
class HarvestImplausible:
    """Plot yields far above the cooperative's, yields pinned at the bound, over-pledged lots."""

    name = "harvest_implausible"
    title_zh = "产量不可信"
    title_en = "Implausible harvest"
    explanation = __doc__ or ""

    def __init__(
        self, min_plots: int = 6, mad_k: int = 5, min_yield_ratio: Fraction = Fraction(2),
        min_steps: int = 5, min_pinned_share: Fraction = Fraction(4, 5),
        bound_tolerance: Fraction = Fraction(1, 100), max_pledge_ratio: Fraction = Fraction(3),
        pledge_horizon_days: int = 30,
    ) -> None:  # fmt: skip
        self.min_plots = min_plots
        self.mad_k = mad_k
        self.min_yield_ratio = min_yield_ratio
        self.min_steps = min_steps
        self.min_pinned_share = min_pinned_share
        self.bound_tolerance = bound_tolerance
        self.max_pledge_ratio = max_pledge_ratio
        self.pledge_horizon = pledge_horizon_days * DAY

    def detect(self, ctx: ScanContext) -> Sequence[Finding]:
        """Findings of the three checks."""
        return self._plots(ctx) + self._processors(ctx) + self._lots(ctx)

    # ------------------------------------------------------------------------ (a) plot yields

    def _plots(self, ctx: ScanContext) -> list[Finding]:
        """Plots far above their cooperative's season."""
        areas = {bytes(p): a for p, a in ctx.conn.execute(select(Plot.plot, Plot.area_centi_mu))}
        groups: dict[tuple[bytes, str], dict[bytes, list[tuple[bytes, bytes, int, int]]]] = {}
        rows = ctx.conn.execute(
            select(
                Harvest.cooperative, Harvest.season, Harvest.plot, Harvest.lot, Harvest.farmer,
                Harvest.grams, Harvest.block_timestamp,
            )
        )  # fmt: skip
        for coop, season, plot, lot, farmer, grams, at in rows:
            if areas.get(bytes(plot), 0) > 0:
                group = groups.setdefault((bytes(coop), season), {})
                group.setdefault(bytes(plot), []).append((bytes(lot), bytes(farmer), grams, at))
        found: list[Finding] = []
        for (coop, season), plots in sorted(groups.items()):
            if len(plots) < self.min_plots:
                continue  # too few plots to say what is plausible: the documented blind spot
            found += self._season(coop, season, plots, areas)
        return found

    def _season(
        self, coop: bytes, season: str,
        plots: dict[bytes, list[tuple[bytes, bytes, int, int]]], areas: dict[bytes, int],
    ) -> list[Finding]:  # fmt: skip
        """The plots of one cooperative-season above its threshold."""
        kg_mu = {
            p: Fraction(sum(h[2] for h in hs) * CENTI_MU_PER_MU, GRAMS_PER_KG * areas[p])
            for p, hs in plots.items()
        }
        mid = median(list(kg_mu.values()))
        mad = median([abs(v - mid) for v in kg_mu.values()])
        limit = max(mid + self.mad_k * mad, self.min_yield_ratio * mid)
        found: list[Finding] = []
        for plot, value in sorted(kg_mu.items()):
            if value <= limit:
                continue
            harvests = plots[plot]
            farmers = sorted({hexid(h[1]) for h in harvests})
            grams = sum(h[2] for h in harvests)
            found.append(
                Finding(
                    rule=self.name,
                    key=f"{self.name}:plot:{hexid(plot)}:{season}",
                    subject=f"plot:{hexid(plot)}",
                    severity="high" if value > 2 * limit else "medium",
                    explanation_zh=(
                        f"地块 {season} 季亩产鲜叶 {decimal_str(value, 1)} 公斤，"
                        f"同合作社 {len(kg_mu)} 块地的中位数为 {decimal_str(mid, 1)} 公斤，"
                        f"可信上限 {decimal_str(limit, 1)} 公斤。"
                    ),
                    explanation_en=(
                        f"The plot yielded {decimal_str(value, 1)} kg of fresh leaf per mu in "
                        f"{season}; the median of its cooperative's {len(kg_mu)} plots is "
                        f"{decimal_str(mid, 1)} kg, the plausible limit {decimal_str(limit, 1)} kg."
                    ),
                    evidence=Evidence(
                        farmers=tuple(farmers),
                        lots=tuple(sorted(hexid(h[0]) for h in harvests)),
                        wallets=(hexid(coop),),
                        figures={
                            "kg_per_mu": decimal_str(value),
                            "coop_median_kg_per_mu": decimal_str(mid),
                            "coop_mad_kg_per_mu": decimal_str(mad),
                            "limit_kg_per_mu": decimal_str(limit),
                            **({"ratio_to_median": decimal_str(value / mid)} if mid else {}),
                            "plots_in_season": str(len(kg_mu)),
                            "grams": str(grams),
                            "area_centi_mu": str(areas[plot]),
                        },
                    ),
                    observed_at=max(h[3] for h in harvests),
                )
            )
        return found

    # ------------------------------------------------------------------ (b) yields at the bound

    def _processors(self, ctx: ScanContext) -> list[Finding]:
        """Processors whose steps mostly yield at the bound."""
        bounds = _yield_bounds(ctx.conn)
        by_processor: dict[bytes, list[tuple[Step, Fraction, Fraction]]] = defaultdict(list)
        for step in _steps(ctx.conn):
            if step.fresh_in > 0:
                bound = Fraction(_bound_at(bounds, step.block), BPS)
                ratio = Fraction(step.made_from_fresh, step.fresh_in)
                by_processor[step.processor].append((step, ratio, bound))
        found: list[Finding] = []
        for processor, steps in sorted(by_processor.items()):
            pinned = [s for s in steps if s[1] >= s[2] * (1 - self.bound_tolerance)]
            share = Fraction(len(pinned), len(steps))
            if len(steps) >= self.min_steps and share >= self.min_pinned_share:
                found.append(self._pinned(ctx, processor, steps, pinned))
        return found

    def _pinned(
        self, ctx: ScanContext, processor: bytes,
        steps: list[tuple[Step, Fraction, Fraction]], pinned: list[tuple[Step, Fraction, Fraction]],
    ) -> Finding:  # fmt: skip
        """The finding for one processor."""
        share = Fraction(len(pinned), len(steps))
        bound = max(s[2] for s in steps)
        mid = median([s[1] for s in steps])
        last = max(steps, key=lambda s: (s[0].block, s[0].log_index))[0]
        pct = _pct
        return Finding(
            rule=self.name,
            key=f"{self.name}:processor:{hexid(processor)}",
            subject=f"wallet:{hexid(processor)}",
            severity="high" if share == 1 else "medium",
            explanation_zh=(
                f"加工方 {len(steps)} 次加工中有 {len(pinned)} 次（{pct(share)}%）出成率贴近上限 "
                f"{pct(bound, 2)}%，中位数 {pct(mid, 2)}%：成品茶重量疑似按上限填报而非实际称重。"
            ),
            explanation_en=(
                f"{len(pinned)} of the processor's {len(steps)} steps "
                f"({decimal_str(share * 100, 1)}%) yield at the {decimal_str(bound * 100, 2)}% "
                f"bound (median {decimal_str(mid * 100, 2)}%): made tea booked at the ceiling."
            ),
            evidence=Evidence(
                lots=tuple(sorted(hexid(lot) for s in pinned for lot in s[0].outputs)),
                wallets=(hexid(processor),),
                figures={
                    "steps": str(len(steps)),
                    "pinned_steps": str(len(pinned)),
                    "pinned_share": decimal_str(share),
                    "bound": decimal_str(bound),
                    "median_yield": decimal_str(mid),
                    "tolerance": decimal_str(self.bound_tolerance),
                },
            ),
            observed_at=_block_time(ctx, last.block),
        )

    # -------------------------------------------------------------------- (c) over-pledged lots

    def _lots(self, ctx: ScanContext) -> list[Finding]:
        """Held lots carrying debts beyond `max_pledge_ratio` x their plausible value."""
        values = _held_lot_values(ctx.conn)
        debts, loans_of = _debts(ctx, ctx.now + self.pledge_horizon)
        per_farmer: dict[bytes, Fraction] = defaultdict(Fraction)
        for shares in values.values():
            for farmer, value in shares.items():
                per_farmer[farmer] += value
        found: list[Finding] = []
        for lot, shares in sorted(values.items()):
            value = sum(shares.values(), Fraction(0))
            pledged = sum(
                (debts[f] * v / per_farmer[f] for f, v in shares.items() if debts.get(f)),
                Fraction(0),
            )
            if value > 0 and pledged > self.max_pledge_ratio * value:
                found.append(self._pledged(ctx, lot, shares, value, pledged, debts, loans_of))
        return found

    def _pledged(
        self, ctx: ScanContext, lot: bytes, shares: dict[bytes, Fraction], value: Fraction,
        pledged: Fraction, debts: dict[bytes, int], loans_of: dict[bytes, list[int]],
    ) -> Finding:  # fmt: skip
        """The finding for one lot."""
        ratio = pledged / value
        indebted = sorted(f for f in shares if debts.get(f))
        value_fen, pledged_fen = int(value), int(pledged)
        return Finding(
            rule=self.name,
            key=f"{self.name}:lot:{hexid(lot)}",
            subject=f"lot:{hexid(lot)}",
            severity="high" if ratio > 2 * self.max_pledge_ratio else "medium",
            explanation_zh=(
                f"该批次按合作社当季均价约值 ¥{format_fen(value_fen)}，而其中 {len(indebted)} 位"
                f"农户的未还贷款分摊到该批次的部分达 ¥{format_fen(pledged_fen)}"
                f"（{decimal_str(ratio, 2)} 倍）。"
            ),
            explanation_en=(
                f"The lot is plausibly worth ¥{format_fen(value_fen)} at its cooperative's "
                f"season price, but the outstanding loans of {len(indebted)} farmer(s) with leaf "
                f"in it put ¥{format_fen(pledged_fen)} on it ({decimal_str(ratio, 2)} times)."
            ),
            evidence=Evidence(
                farmers=tuple(hexid(f) for f in indebted),
                loans=tuple(sorted(i for f in indebted for i in loans_of.get(f, ()))),
                lots=(hexid(lot),),
                amounts_fen={
                    "lot_value": value_fen,
                    "pledged_on_lot": pledged_fen,
                    "farmers_outstanding": sum(debts[f] for f in indebted),
                },
                figures={
                    "pledge_ratio": decimal_str(ratio),
                    "limit": decimal_str(self.max_pledge_ratio),
                },
            ),
            observed_at=ctx.now,
        )


# ------------------------------------------------------------------------------------ reading


def _pct(value: Fraction, places: int = 1) -> str:
    """A ratio in percent."""
    return decimal_str(value * 100, places)


def _yield_bounds(conn: Connection) -> list[tuple[int, int, int]]:
    """(block, previousBps, newBps) of every indexed MaxYieldChanged, oldest first."""
    rows = conn.execute(
        select(RawEvent.block_number, RawEvent.data)
        .where(RawEvent.event == MAX_YIELD_EVENT)
        .order_by(RawEvent.block_number, RawEvent.log_index)
    )
    return [
        (block, int.from_bytes(bytes(data)[:32], "big"), int.from_bytes(bytes(data)[32:64], "big"))
        for block, data in rows
    ]


def _bound_at(bounds: list[tuple[int, int, int]], block: int) -> int:
    """The bound in force at `block`: the last change at or before it; before the first indexed
    change, that change's previous value (the deployment default if none is known)."""
    current = bounds[0][1] if bounds and bounds[0][1] else DEFAULT_MAX_YIELD_BPS
    for at, _, bps in bounds:
        if at > block:
            break
        current = bps
    return current


def _steps(conn: Connection) -> list[Step]:
    """Every processing step with its fresh-leaf and made-tea inputs and its outputs."""
    harvests = {bytes(lot) for (lot,) in conn.execute(select(Harvest.lot))}
    steps: dict[bytes, Step] = {}
    produced = conn.execute(
        select(
            LotProduced.process_id, LotProduced.processor, LotProduced.lot, LotProduced.grams,
            LotProduced.block_number, LotProduced.log_index,
        )
    )  # fmt: skip
    for pid, processor, lot, grams, block, log_index in produced:
        step = steps.setdefault(bytes(pid), Step(bytes(pid)))
        step.processor, step.out = bytes(processor), step.out + grams
        step.outputs.append(bytes(lot))
        step.block, step.log_index = max((step.block, step.log_index), (block, log_index))
    consumed = conn.execute(select(LotConsumed.process_id, LotConsumed.lot, LotConsumed.grams))
    for pid, lot, grams in consumed:
        step = steps.get(bytes(pid))
        if step is None:
            continue  # inputs of a step whose outputs are not indexed yet
        if bytes(lot) in harvests:
            step.fresh_in += grams
        else:
            step.made_in += grams
    return list(steps.values())


def _block_time(ctx: ScanContext, block: int) -> int:
    """A block's time from any raw event in it (the scan's chain time if none)."""
    at = ctx.conn.execute(
        select(RawEvent.block_timestamp).where(RawEvent.block_number == block).limit(1)
    ).scalar()
    return int(at) if at is not None else ctx.now


def _held_lot_values(conn: Connection) -> dict[bytes, dict[bytes, Fraction]]:
    """Lots neither sold nor consumed, each farmer's leaf in them valued at the cooperative-
    season price (fen, exact); lots with any unpriced leaf are left out."""
    sold = {bytes(lot) for (lot,) in conn.execute(select(Sale.lot))}
    consumed = {bytes(lot) for (lot,) in conn.execute(select(LotConsumed.lot))}
    rows = conn.execute(
        select(
            CoopSeason.cooperative, CoopSeason.season, CoopSeason.fresh_grams,
            CoopSeason.income_fen,
        )
    )  # fmt: skip
    prices = {
        (bytes(c), s): Fraction(income, grams)
        for c, s, grams, income in rows
        if grams > 0 and income > 0
    }
    sources: dict[bytes, list[tuple[bytes, bytes, str, int]]] = defaultdict(list)
    for lot, farmer, coop, season, grams in conn.execute(
        select(Harvest.lot, Harvest.farmer, Harvest.cooperative, Harvest.season, Harvest.grams)
    ):
        sources[bytes(lot)].append((bytes(farmer), bytes(coop), season, grams))
    for lot, farmer, coop, season, grams in conn.execute(
        select(LotSource.lot, LotSource.farmer, LotSource.cooperative, LotSource.season,
               LotSource.grams)
    ):  # fmt: skip
        sources[bytes(lot)].append((bytes(farmer), bytes(coop), season, grams))
    values: dict[bytes, dict[bytes, Fraction]] = {}
    for lot, parts in sources.items():
        if lot in sold or lot in consumed or any((c, s) not in prices for _, c, s, _ in parts):
            continue
        shares: dict[bytes, Fraction] = defaultdict(Fraction)
        for farmer, coop, season, grams in parts:
            shares[farmer] += grams * prices[(coop, season)]
        values[lot] = dict(shares)
    return values


def _debts(ctx: ScanContext, due_by: int) -> tuple[dict[bytes, int], dict[bytes, list[int]]]:
    """Each farmer's outstanding fen on open loans falling due by `due_by`, and those loans (a
    loan due later is repaid from tea not yet picked, not from the lots held now)."""
    debts: dict[bytes, int] = defaultdict(int)
    loans_of: dict[bytes, list[int]] = defaultdict(list)
    for rec in ctx.loans.values():
        if rec.due_date is None or rec.due_date > due_by:
            continue
        owed = rec.owed_by(ctx.now) if rec.open_at(ctx.now) else 0
        if owed > 0:
            debts[rec.farmer] += owed
            loans_of[rec.farmer].append(rec.loan_id)
    return dict(debts), dict(loans_of)
