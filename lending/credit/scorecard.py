"""Points scorecard: monotone bins, integer points, frozen versioned model files, calibration.

A model is a list of features, each cut into bins by integer edges with integer points per bin;
the score is the sum of the points of the bins a farmer falls in. Points are monotone in each
feature's declared direction (more verified income never lowers the score), which the model
refuses to load without. The version is the sha256 of the canonical JSON of the scaling, bins
and points, so two files score alike exactly when their versions are equal.

Calibration (`python -m lending.credit.scorecard fit --seed 6`): quantile bins merged until their
weight of evidence (WoE) is monotone in the declared direction, weak features (IV < 0.02)
dropped, a logistic regression on the WoE values (features with a wrong-signed coefficient
dropped and the regression refitted), and points scaled to `base_score` at `base_odds`:1 good:bad
odds with `pdo` points to double the odds, rounded to ints.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lending.credit.features import (
    FEATURE_SPECS,
    SPECS_BY_NAME,
    CreditFeatures,
    Direction,
    canonical_json,
    feature_values,
    sha256_hex,
    snapshot_from_profile,
)
from lending.errors import ModelError

SCHEMA = "tealedger.scorecard/1"
MODEL_DIR = Path(__file__).with_name("model")
DEFAULT_MODEL_FILE = MODEL_DIR / "scorecard-v2.json"
MIN_IV = 0.02
MAX_BINS = 6
MIN_BIN_SHARE = 0.05


class Scaling(BaseModel):
    """Score scaling: `base_score` points at `base_odds`:1 good:bad, `pdo` points per doubling."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_score: int = 600
    base_odds: int = 30
    pdo: int = 20


class FeatureBins(BaseModel):
    """One feature's bins: value v falls in bin bisect_right(edges, v); one point value per bin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    direction: Direction
    edges: tuple[int, ...]
    points: tuple[int, ...]

    @model_validator(mode="after")
    def _check(self) -> FeatureBins:
        """Known feature, strictly increasing edges, one point per bin, monotone points."""
        spec = SPECS_BY_NAME.get(self.name)
        if spec is None:
            raise ValueError(f"unknown feature {self.name!r}")
        if spec.direction is not self.direction:
            raise ValueError(f"{self.name} must be {spec.direction.value}")
        if len(self.points) != len(self.edges) + 1:
            raise ValueError(
                f"{self.name}: {len(self.edges)} edges need {len(self.edges) + 1} points"
            )
        if any(b <= a for a, b in itertools.pairwise(self.edges)):
            raise ValueError(f"{self.name}: edges must increase strictly")
        steps = [b - a for a, b in itertools.pairwise(self.points)]
        up = self.direction is Direction.HIGHER_IS_BETTER
        if any((s < 0) if up else (s > 0) for s in steps):
            raise ValueError(f"{self.name}: points are not monotone ({self.direction.value})")
        return self

    def bin_of(self, value: int) -> int:
        """Index of the bin holding `value`."""
        return bisect.bisect_right(self.edges, value)

    @property
    def max_points(self) -> int:
        """The most points this feature can give."""
        return max(self.points)

    def bin_range(self, index: int) -> tuple[int | None, int | None]:
        """(lowest value, highest value) of bin `index`; None is unbounded."""
        low = self.edges[index - 1] if index > 0 else None
        high = self.edges[index] - 1 if index < len(self.edges) else None
        return low, high


class FeaturePoints(BaseModel):
    """Points one feature gave: its value, bin, points, the maximum and the points lost."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: int
    bin: int
    points: int
    max_points: int

    @property
    def points_lost(self) -> int:
        """Maximum points of the feature minus the points given."""
        return self.max_points - self.points


class ScoreResult(BaseModel):
    """A score and its breakdown by feature, in model order."""

    model_config = ConfigDict(frozen=True)

    model_version: str
    score: int
    by_feature: tuple[FeaturePoints, ...]


class Scorecard(BaseModel):
    """A frozen points scorecard; `version` is the sha256 of its scaling, bins and points."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: str = SCHEMA
    name: str
    scaling: Scaling = Field(default_factory=Scaling)
    features: tuple[FeatureBins, ...]
    version: str = ""
    calibration: dict[str, Any] = Field(default_factory=dict)
    """How the model was fitted and how it performed; not part of the version hash."""

    @model_validator(mode="after")
    def _check_version(self) -> Scorecard:
        """Fill in the version, or refuse a file whose bins/points changed after fitting."""
        if not self.features:
            raise ValueError("a scorecard needs at least one feature")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("a feature appears twice")
        actual = self.compute_version()
        if not self.version:
            object.__setattr__(self, "version", actual)
        elif self.version != actual:
            raise ValueError(
                f"version {self.version} does not match the bins and points (sha256 {actual}): "
                "the file was edited after fitting; refit it with "
                "`python -m lending.credit.scorecard fit`"
            )
        return self

    def hashed_content(self) -> dict[str, Any]:
        """What the version hash covers: schema, scaling, bins and points."""
        return {
            "schema_version": self.schema_version,
            "scaling": self.scaling.model_dump(mode="json"),
            "features": [f.model_dump(mode="json") for f in self.features],
        }

    def compute_version(self) -> str:
        """sha256 of the canonical JSON of the hashed content."""
        return sha256_hex(canonical_json(self.hashed_content()))

    @property
    def short_version(self) -> str:
        """First 12 hex digits of the version, for display."""
        return self.version[:12]

    def score(self, features: CreditFeatures) -> ScoreResult:
        """Score `features`: the sum of each feature's bin points."""
        values = feature_values(features)
        parts = []
        for fb in self.features:
            value = values[fb.name]
            index = fb.bin_of(value)
            parts.append(FeaturePoints(
                name=fb.name, value=value, bin=index, points=fb.points[index],
                max_points=fb.max_points,
            ))  # fmt: skip
        total = sum(p.points for p in parts)
        return ScoreResult(model_version=self.version, score=total, by_feature=tuple(parts))

    @property
    def score_range(self) -> tuple[int, int]:
        """Lowest and highest possible score."""
        return (
            sum(min(f.points) for f in self.features),
            sum(max(f.points) for f in self.features),
        )

    def to_json(self) -> str:
        """Pretty, stable JSON of the model file."""
        return json.dumps(
            self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False
        )


# ----------------------------------------------------------------------------- loading


def load_model(path: Path | str | None = None) -> Scorecard:
    """Load and verify a scorecard file (the shipped default model, v2, cached)."""
    if path is None:
        return _shipped(str(DEFAULT_MODEL_FILE))
    return _parse(Path(path))


@lru_cache(maxsize=8)
def _shipped(path: str) -> Scorecard:
    """Cached parse of a shipped model file."""
    return _parse(Path(path))


def _parse(path: Path) -> Scorecard:
    """Parse one model file with errors that name it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"cannot read scorecard {path}: {exc.strerror}") from None
    try:
        return Scorecard.model_validate_json(text)
    except ValidationError as exc:
        problem = exc.errors()[0].get("msg", str(exc))
        raise ModelError(f"scorecard {path} is invalid: {problem}") from None


def shipped_models() -> dict[str, Scorecard]:
    """Every model file in lending/model, by version."""
    return {m.version: m for m in (_shipped(str(p)) for p in sorted(MODEL_DIR.glob("*.json")))}


def model_by_version(version: str, extra: Sequence[Scorecard] = ()) -> Scorecard:
    """The model with this version among the shipped ones and `extra`."""
    for model in extra:
        if model.version == version:
            return model
    found = shipped_models().get(version)
    if found is None:
        raise ModelError(
            f"no scorecard with version {version[:12]}.. in {MODEL_DIR}; restore the model file "
            "the decision was made with (model files are never deleted, only added)"
        )
    return found


# ----------------------------------------------------------------------------- calibration


def fit_scorecard(
    seed: int,
    n_train: int = 40_000,
    n_holdout: int = 20_000,
    scaling: Scaling | None = None,
    name: str = "tea-smallholder-v2",
) -> Scorecard:
    """Fit a scorecard on a simulated population; AUC/KS on an independent holdout."""
    import numpy as np
    import sklearn

    from lending.credit.simulation import PROCESS_VERSION, simulate_population

    scaling = scaling or Scaling()
    x_train, y_train = _matrix(simulate_population(seed, n_train, "train"))
    x_hold, y_hold = _matrix(simulate_population(seed, n_holdout, "holdout"))
    binned, dropped, ivs = _bin_all(x_train, y_train)
    features, coefs, more_dropped = _regress(binned, x_train, y_train, scaling)
    dropped.update(more_dropped)
    draft = Scorecard(name=name, scaling=scaling, features=tuple(features))
    calibration = {
        "method": "quantile bins merged to monotone WoE; logistic regression on WoE; "
        "points = round(-(coef * woe + intercept / k) * pdo / ln 2 + offset / k)",
        "simulation": {
            "process": PROCESS_VERSION, "seed": seed, "n_train": n_train, "n_holdout": n_holdout,
            "train_default_rate": _fmt(float(np.mean(y_train))),
            "holdout_default_rate": _fmt(float(np.mean(y_hold))),
        },
        "train": _performance(draft, x_train, y_train),
        "holdout": _performance(draft, x_hold, y_hold),
        "information_value": {k: _fmt(v) for k, v in ivs.items()},
        "coefficients": {k: _fmt(v) for k, v in coefs.items()},
        "dropped": dropped,
        "software": {"numpy": np.__version__, "scikit-learn": sklearn.__version__},
    }  # fmt: skip
    return draft.model_copy(update={"calibration": calibration})


def _fmt(value: float) -> str:
    """A metric as a fixed 4-decimal string (stable in JSON, never a float)."""
    return f"{value:.4f}"


def _matrix(population: Any) -> tuple[Any, Any]:
    """Feature columns (name -> int array) and default flags, via the profile adapter."""
    import numpy as np

    rows = [feature_values(snapshot_from_profile(f.profile).features) for f in population.farmers]
    columns = {s.name: np.array([r[s.name] for r in rows], dtype=np.int64) for s in FEATURE_SPECS}
    return columns, np.array([f.defaulted for f in population.farmers], dtype=np.int64)


def _bin_all(
    x: dict[str, Any], y: Any
) -> tuple[dict[str, tuple[list[int], list[float]]], dict[str, str], dict[str, float]]:
    """Monotone bins and WoE per candidate feature; weak ones dropped with the reason."""
    binned: dict[str, tuple[list[int], list[float]]] = {}
    dropped: dict[str, str] = {}
    ivs: dict[str, float] = {}
    for spec in FEATURE_SPECS:
        edges, woe, iv = monotone_bins(x[spec.name], y, spec.direction)
        ivs[spec.name] = iv
        if len(edges) == 0:
            dropped[spec.name] = "a single bin after monotone merging"
        elif iv < MIN_IV:
            dropped[spec.name] = f"information value {iv:.4f} < {MIN_IV}"
        else:
            binned[spec.name] = (edges, woe)
    return binned, dropped, ivs


def monotone_bins(
    x: Any, y: Any, direction: Direction, max_bins: int = MAX_BINS
) -> tuple[list[int], list[float], float]:
    """Integer edges, WoE per bin (monotone in `direction`) and the information value."""
    import numpy as np

    edges = _initial_edges(x, max_bins)
    while True:
        index = np.searchsorted(np.array(edges, dtype=np.int64), x, side="right")
        goods, bads = _counts(index, y, len(edges) + 1)
        small = _smallest_bin(goods + bads, len(x))
        woe = _woe(goods, bads)
        bad_step = _violation(woe, direction)
        cut = small if small is not None else bad_step
        if cut is None:
            break
        edges.pop(cut if cut < len(edges) else cut - 1)
    iv = float(np.sum((_dist(goods) - _dist(bads)) * woe))
    return edges, [float(w) for w in woe], iv


def _initial_edges(x: Any, max_bins: int) -> list[int]:
    """Each distinct value of a count; else distinct, rounded quantiles above the minimum."""
    import numpy as np

    distinct = np.unique(x)
    if len(distinct) <= 2 * max_bins:
        return [int(v) for v in distinct[1:]]
    qs = np.quantile(x, np.linspace(0, 1, max_bins + 1)[1:-1], method="higher")
    low = int(np.min(x))
    return sorted({_nice(int(q)) for q in qs if _nice(int(q)) > low})


def _nice(value: int) -> int:
    """Round to two significant digits (edges people can read: 12,000 yuan, not 12,347)."""
    if abs(value) < 100:
        return value
    digits = len(str(abs(value))) - 2
    return round(value, -digits)


def _counts(index: Any, y: Any, k: int) -> tuple[Any, Any]:
    """Goods and bads per bin."""
    import numpy as np

    bads = np.bincount(index, weights=y, minlength=k)
    totals = np.bincount(index, minlength=k)
    return totals - bads, bads


def _smallest_bin(totals: Any, n: int) -> int | None:
    """Index of the smallest bin if it holds fewer than MIN_BIN_SHARE of the data."""
    if len(totals) <= 1:
        return None
    i = int(totals.argmin())
    return i if totals[i] < MIN_BIN_SHARE * n else None


def _dist(counts: Any) -> Any:
    """Smoothed share of each bin (+0.5 per bin, so empty bins have finite WoE)."""
    return (counts + 0.5) / (counts.sum() + 0.5 * len(counts))


def _woe(goods: Any, bads: Any) -> Any:
    """Weight of evidence ln(share of goods / share of bads) per bin."""
    import numpy as np

    return np.log(_dist(goods) / _dist(bads))


def _violation(woe: Any, direction: Direction) -> int | None:
    """First bin whose WoE is not monotone with the next one (merge point), if any."""
    sign = 1 if direction is Direction.HIGHER_IS_BETTER else -1
    for i in range(len(woe) - 1):
        if sign * (woe[i + 1] - woe[i]) <= 0:
            return i
    return None


def _regress(
    binned: dict[str, tuple[list[int], list[float]]],
    x: dict[str, Any],
    y: Any,
    scaling: Scaling,
) -> tuple[list[FeatureBins], dict[str, float], dict[str, str]]:
    """Logistic regression on WoE, dropping wrong-signed features, then integer points."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    names = [s.name for s in FEATURE_SPECS if s.name in binned]
    dropped: dict[str, str] = {}
    while True:
        columns = [_woe_column(x[n], *binned[n]) for n in names]
        model = LogisticRegression(C=1e6, solver="lbfgs", max_iter=5000, tol=1e-10)
        model.fit(np.column_stack(columns), y)
        coefs = dict(zip(names, (float(c) for c in model.coef_[0]), strict=True))
        worst = max(names, key=lambda n: coefs[n])
        if coefs[worst] < 0:
            break
        dropped[worst] = f"coefficient {coefs[worst]:.4f} has the wrong sign given the others"
        names.remove(worst)
    intercept = float(model.intercept_[0])
    factor = scaling.pdo / math.log(2)
    offset = scaling.base_score - factor * math.log(scaling.base_odds)
    share = (offset - intercept * factor) / len(names)
    features = []
    for n in names:
        edges, woe = binned[n]
        points = [math.floor(-coefs[n] * w * factor + share + 0.5) for w in woe]
        features.append(FeatureBins(
            name=n, direction=SPECS_BY_NAME[n].direction, edges=tuple(edges),
            points=tuple(points),
        ))  # fmt: skip
    return features, coefs, dropped


def _woe_column(values: Any, edges: list[int], woe: list[float]) -> Any:
    """WoE value of each row's bin."""
    import numpy as np

    index = np.searchsorted(np.array(edges, dtype=np.int64), values, side="right")
    return np.array(woe)[index]


def _performance(model: Scorecard, x: dict[str, Any], y: Any) -> dict[str, str]:
    """AUC, KS and Gini of the integer score on (x, y)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score, roc_curve

    score = np.zeros(len(y), dtype=np.int64)
    for fb in model.features:
        index = np.searchsorted(np.array(fb.edges, dtype=np.int64), x[fb.name], side="right")
        score += np.array(fb.points, dtype=np.int64)[index]
    auc = float(roc_auc_score(y, -score))
    fpr, tpr, _ = roc_curve(y, -score)
    ks = float(np.max(tpr - fpr))
    return {
        "n": str(len(y)), "auc": _fmt(auc), "ks": _fmt(ks), "gini": _fmt(2 * auc - 1),
        "score_p05": str(int(np.percentile(score, 5))),
        "score_p50": str(int(np.percentile(score, 50))),
        "score_p95": str(int(np.percentile(score, 95))),
    }  # fmt: skip


# ----------------------------------------------------------------------------- command


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lending.credit.scorecard fit|verify`: refit the frozen model or check a file."""
    parser = argparse.ArgumentParser(prog="python -m lending.credit.scorecard")
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="calibrate on simulated seasons and write the model file")
    fit.add_argument("--seed", type=int, required=True)
    fit.add_argument("--n-train", type=int, default=40_000)
    fit.add_argument("--n-holdout", type=int, default=20_000)
    fit.add_argument("--out", type=Path, default=DEFAULT_MODEL_FILE)
    verify = sub.add_parser("verify", help="check that a model file matches its version")
    verify.add_argument("path", type=Path, nargs="?", default=DEFAULT_MODEL_FILE)
    args = parser.parse_args(argv)
    if args.command == "verify":
        try:
            model = load_model(args.path)
        except ModelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{args.path}: version {model.version} OK")
        return 0
    model = fit_scorecard(args.seed, args.n_train, args.n_holdout)
    args.out.write_text(model.to_json() + "\n", encoding="utf-8")
    hold = model.calibration["holdout"]
    print(f"wrote {args.out}: version {model.version}")
    print(f"holdout AUC {hold['auc']}  KS {hold['ks']}  (n={hold['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
