"""A tea season for a cooperative region, generated from a seed (pure data, no chain).

The numbers follow what is typical of Enshi's hill tea (恩施玉露 country): smallholdings of
about 1-6 mu, some 300-450 kg of fresh leaf per mu a year, of which the spring flush gives
about 45% at the best grades, summer 30% and autumn 25%; made tea is about 22-25% of the fresh
leaf by mass (4-4.5 kg of leaf per kg of tea); fresh-leaf and made-tea prices fall from
spring to autumn and from special grade to fourth. Farmers differ by a persistent skill
factor, so their records are informative for credit, as real ones are.

How the season flows, as tea regions run it (docs/demo.md, "The season model"): a plot is
picked in 3-6 rounds a flush, and each round's leaf is sold that day at the buying station,
where the cooperative weighs it (one harvest record, the farmer's own lot). The cooperatives
deliver the day's leaf to one factory, which makes it together whoever grew it: each day's
leaf of one grade in runs of at most a line's capacity, each run packed as one made-tea lot.
So a farmer has a lot per delivery (about 23 a season), and a made-tea lot holds the leaf of
many farmers, as real lots do; made-tea lots grow with the region (a run fills up), not with
the number of farmers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from traceability.ids import resident_id_check

FLUSHES: dict[str, tuple[tuple[int, int], tuple[int, int], float]] = {
    # name: (first day (month, day), last day, share of the year's leaf)
    "spring": ((3, 20), (5, 20), 0.45),
    "summer": ((6, 5), (7, 31), 0.30),
    "autumn": ((9, 1), (10, 25), 0.25),
}
# Probability of grades 1 (特级) .. 5 (四级) by flush.
GRADE_MIX = {
    "spring": (0.15, 0.35, 0.30, 0.15, 0.05),
    "summer": (0.02, 0.13, 0.35, 0.35, 0.15),
    "autumn": (0.03, 0.17, 0.35, 0.30, 0.15),
}
# Made-tea price in fen per kg by grade; fresh leaf is paid about a fifth of it per kg.
MADE_TEA_FEN_PER_KG = {1: 160_000, 2: 90_000, 3: 50_000, 4: 28_000, 5: 16_000}
FLUSH_PRICE_FACTOR = {"spring": 1.0, "summer": 0.55, "autumn": 0.65}
VARIETIES = {1: "恩施玉露 Enshi Yulu", 2: "福鼎大白 Fuding Dabai", 3: "鄂茶1号 Echa No.1"}
ETHNICITIES = ("Tujia", "Miao", "Han", "Dong")
LINE_RUN_GRAMS = 1_000_000
"""Fresh leaf a processing line takes in one run (a tonne: a mid-sized line's day of 名优茶)."""
LINE_RUN_DELIVERIES = 400
"""Deliveries one run may consume: its `process` call stays within a quarter of a 30 M-gas
block (traceability.service.process_gas)."""
GENDERS = ("female", "male")


@dataclass(frozen=True)
class Plot:
    """A plot of tea garden."""

    reference: str
    area_centi_mu: int
    variety: int


@dataclass(frozen=True)
class Farmer:
    """A member farmer. Personal fields stay off chain; protected ones only feed fairness."""

    national_id: str
    name: str
    cooperative: int
    village: str
    gender: str
    ethnicity: str
    birth_year: int
    skill: float
    plots: tuple[Plot, ...]

    @property
    def area_centi_mu(self) -> int:
        """Total garden area."""
        return sum(p.area_centi_mu for p in self.plots)


@dataclass(frozen=True)
class Harvest:
    """One picking: `farmer` and `plot` index into the season's lists."""

    farmer: int
    plot: int
    grams: int
    grade: int
    picked_at: datetime
    flush: str

    @property
    def record_ref(self) -> str:
        """The cooperative's own reference for the record (its idempotency key)."""
        return f"H-{self.farmer}-{self.plot}-{int(self.picked_at.timestamp())}"


@dataclass(frozen=True)
class Batch:
    """One processing run at the factory: deliveries of one day and grade made into tea."""

    day: date
    grade: int
    flush: str
    harvests: tuple[int, ...]
    outputs_grams: tuple[int, ...]
    price_fen_per_kg: int


@dataclass
class Season:
    """Everything generated for one year."""

    seed: int
    year: int
    cooperatives: int
    farmers: list[Farmer] = field(default_factory=list)
    harvests: list[Harvest] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)

    def fresh_leaf_grams(self) -> int:
        """Total fresh leaf picked."""
        return sum(h.grams for h in self.harvests)


def _id_number(rng: random.Random, birth_year: int) -> str:
    """A synthetic 18-character resident id number (Enshi prefix 4228; never a real one)."""
    body = (
        f"4228{rng.randint(1, 99):02d}{birth_year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    )
    body += f"{rng.randint(0, 999):03d}"
    return body + resident_id_check(body)


# Surnames common in Enshi (Tujia and Miao families among them) and given-name characters.
SURNAMES = "向田谭黄张李王刘陈杨覃彭龙吴周邓冉谢胡滕"
GIVEN = "春秋兰梅桂芳明华国建军平英秀云德福林山茶玉红丽文"


def farmer_name(national_id: str) -> str:
    """A synthetic Chinese name, seeded by the id so it never disturbs the season's draws."""
    rng = random.Random(f"name:{national_id}")
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given


def make_farmer(rng: random.Random, index: int, cooperatives: int, taken: set[str]) -> Farmer:
    """One farmer with 1-3 plots and an id number no other farmer has."""
    birth_year = rng.randint(1955, 2000)
    national_id = _id_number(rng, birth_year)
    while national_id in taken:
        national_id = _id_number(rng, birth_year)
    taken.add(national_id)
    plots = tuple(
        Plot(
            reference=f"plot-{index}-{k}",
            area_centi_mu=max(30, int(rng.lognormvariate(0.7, 0.5) * 100)),
            variety=rng.choice(tuple(VARIETIES)),
        )
        for k in range(rng.choice((1, 1, 2, 2, 3)))
    )
    return Farmer(
        national_id=national_id,
        name=farmer_name(national_id),
        cooperative=index % cooperatives,
        village=f"village-{rng.randint(1, 40):02d}",
        gender=rng.choice(GENDERS),
        ethnicity=rng.choices(ETHNICITIES, weights=(50, 20, 25, 5))[0],
        birth_year=birth_year,
        skill=min(1.5, max(0.5, rng.gauss(1.0, 0.18))),
        plots=plots,
    )


def _flush_days(year: int, flush: str) -> tuple[date, date]:
    """First and last picking day of a flush."""
    (m1, d1), (m2, d2), _ = FLUSHES[flush]
    return date(year, m1, d1), date(year, m2, d2)


def _grade(rng: random.Random, flush: str, skill: float) -> int:
    """A grade drawn from the flush mix, nudged up by skill."""
    grade = rng.choices((1, 2, 3, 4, 5), weights=GRADE_MIX[flush])[0]
    if skill > 1.15 and grade > 1 and rng.random() < 0.3:
        grade -= 1
    if skill < 0.85 and grade < 5 and rng.random() < 0.3:
        grade += 1
    return grade


def pickings(rng: random.Random, farmer_index: int, farmer: Farmer, year: int) -> list[Harvest]:
    """The farmer's pickings over the three flushes."""
    out = []
    for plot_index, plot in enumerate(farmer.plots):
        kg_per_mu_year = rng.uniform(300, 450) * farmer.skill
        for flush, (_first, _last, share) in FLUSHES.items():
            start, end = _flush_days(year, flush)
            picks = rng.randint(3, 6)
            grams_total = int(kg_per_mu_year * share * plot.area_centi_mu / 100 * 1000)
            days = sorted(rng.sample(range((end - start).days + 1), picks))
            for day in days:
                moment = datetime.combine(start + timedelta(days=day), datetime.min.time(), UTC)
                moment += timedelta(hours=rng.randint(6, 16), minutes=rng.randint(0, 59))
                grams = max(500, int(grams_total / picks * rng.uniform(0.7, 1.3)))
                grade = _grade(rng, flush, farmer.skill)
                out.append(Harvest(farmer_index, plot_index, grams, grade, moment, flush))
    return out


def _batches(season: Season, rng: random.Random) -> list[Batch]:
    """The factory's processing runs: each day's leaf of one grade, whichever cooperative
    delivered it, made together in runs of at most a line's capacity, one lot per run."""
    groups: dict[tuple[date, int, str], list[int]] = {}
    for i, h in enumerate(season.harvests):
        groups.setdefault((h.picked_at.date(), h.grade, h.flush), []).append(i)
    out = []
    for (day, grade, flush), members in sorted(groups.items()):
        for run in _line_runs(season, members):
            fresh = sum(season.harvests[i].grams for i in run)
            made = int(fresh * rng.uniform(0.22, 0.25))
            factor = FLUSH_PRICE_FACTOR[flush] * rng.uniform(0.9, 1.1)
            price = int(MADE_TEA_FEN_PER_KG[grade] * factor)
            out.append(Batch(day, grade, flush, tuple(run), (made,), price))
    return out


def _line_runs(season: Season, members: list[int]) -> list[list[int]]:
    """A day's deliveries of one grade cut into runs a processing line takes at once."""
    runs: list[list[int]] = [[]]
    fresh = 0
    for i in members:
        grams = season.harvests[i].grams
        full = fresh + grams > LINE_RUN_GRAMS or len(runs[-1]) >= LINE_RUN_DELIVERIES
        if runs[-1] and full:
            runs.append([])
            fresh = 0
        runs[-1].append(i)
        fresh += grams
    return runs


def generate(
    farmers: int = 300, seed: int = 2026, year: int = 2026, cooperatives: int = 3
) -> Season:
    """The whole season, identical for identical arguments."""
    if farmers < 1 or cooperatives < 1:
        raise ValueError("a season needs at least one farmer and one cooperative")
    rng = random.Random(seed)
    season = Season(seed=seed, year=year, cooperatives=cooperatives)
    taken: set[str] = set()
    season.farmers = [make_farmer(rng, i, cooperatives, taken) for i in range(farmers)]
    for i, farmer in enumerate(season.farmers):
        season.harvests.extend(pickings(rng, i, farmer, year))
    season.harvests.sort(key=lambda h: (h.picked_at, h.farmer, h.plot))
    season.batches = _batches(season, rng)
    return season
