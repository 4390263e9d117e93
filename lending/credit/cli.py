"""`tealedger credit`: explain (replay) a stored decision, and the fairness report (of a
simulated population, or with --from-store of the stored decisions: lending.credit.observed).

Exit codes (lending.errors.ExitCode): 0 success; 2 bad input (unknown decision, unreadable
database or file, bad option, a population too small to compare); 3 a fairness ratio is below
its threshold; 4 the replay does not match; 5 the LPR table is stale for the decision's date.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from indexer.db import default_database_url, make_engine
from lending.credit.decision import DecisionRecord
from lending.credit.fairness import (
    DEFAULT_N,
    DEFAULT_SEED,
    MIN_N,
    FairnessReport,
    FairnessThresholds,
    run_fairness,
)
from lending.credit.observed import (
    ObservedThresholds,
    observed_fairness,
    read_groups_file,
    render_observed,
)
from lending.credit.replay import ReplayResult, replay
from lending.credit.scorecard import load_model
from lending.credit.store import store_for_url
from lending.errors import (
    CreditError,
    ExitCode,
    FairnessThresholdError,
    LendingError,
    ReplayMismatchError,
    exit_code_for,
)
from lending.pricing.lpr import load_lpr_table
from lending.pricing.units import format_fen

credit_app = typer.Typer(
    help="Credit decisions: replay a stored decision, fairness report.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the `credit` command group to the root `tealedger` app."""
    app.add_typer(credit_app, name="credit")


DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        "--database",
        envvar="TEALEDGER_CREDIT_DB",
        help="Decision database URL (default: the service's, $DATABASE_URL or tealedger.db in "
        "the data dir).",
    ),
]


@credit_app.command("explain")
def explain(
    decision: Annotated[str, typer.Argument(help="Decision id (or a unique prefix, 8+ chars).")],
    db: DbOpt = None,
    profile: Annotated[
        Path | None,
        typer.Option(help="Profile JSON at the decision's block: re-derive the features too."),
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="An extra scorecard file, if not in lending/model.")
    ] = None,
    lpr_table: Annotated[
        Path | None,
        typer.Option(help="The LPR table the decision was priced with, if no longer shipped."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the replay as JSON.")] = False,
) -> None:
    """Recompute a stored decision from its inputs and show that it matches."""
    try:
        db = db or default_database_url()
        record = store_for_url(db).get_decision(decision)
        extra = (load_model(model),) if model else ()
        result = replay(
            record,
            models=extra,
            profile=_read_json(profile) if profile else None,
            lpr_table=load_lpr_table(lpr_table) if lpr_table else None,
        )
    except LendingError as exc:
        _fail(exc)
    except Exception as exc:  # a database that cannot be opened or read
        typer.echo(f"error: cannot read decision {decision} from {db}: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    if json_out:
        typer.echo(json.dumps(_replay_json(record, result), indent=2, ensure_ascii=False))
    else:
        typer.echo(render_decision(record, result))
    if not result.matches:
        _fail(ReplayMismatchError(record.decision_id, result.differences))


@credit_app.command("fairness")
def fairness(
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = DEFAULT_SEED,
    n: Annotated[int, typer.Option(help=f"Simulated farmers (at least {MIN_N:,}).")] = DEFAULT_N,
    approval_threshold: Annotated[
        str, typer.Option(help="Lowest approval-rate ratio (four-fifths rule).")
    ] = "0.80",
    limit_threshold: Annotated[
        str, typer.Option(help="Lowest mean-limit ratio within a score band.")
    ] = "0.80",
    min_group_size: Annotated[
        int | None,
        typer.Option(
            "--min-group-size",
            "--min-group",
            help="Smaller groups are not judged (default 50 simulated, 30 with --from-store).",
        ),
    ] = None,
    proxy_bias: Annotated[
        bool,
        typer.Option("--proxy-bias", help="Score with the biased canary variant (must fail)."),
    ] = False,
    from_store: Annotated[
        bool,
        typer.Option("--from-store", help="Judge the stored decisions, not a simulation."),
    ] = False,
    db: DbOpt = None,
    indexer_db: Annotated[
        str | None,
        typer.Option(
            "--indexer-db",
            help="Indexer database URL with farmers and loans (default: the decision database).",
        ),
    ] = None,
    groups: Annotated[
        Path | None,
        typer.Option(
            "--groups",
            help="With --from-store: CSV farmer_id,<attribute>,... of off-chain groups.",
        ),
    ] = None,
    income_buckets: Annotated[
        int | None,
        typer.Option(help="With --from-store: income quantile buckets per score band (3)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Approval-rate and within-band limit ratios across groups of a simulated population, or
    with --from-store of the stored decisions (docs/model-card.md); fails loudly (exit 3)."""
    # --db is left out: $TEALEDGER_CREDIT_DB may set it for explain in every mode.
    store_only = {
        "--indexer-db": indexer_db,
        "--groups": groups,
        "--income-buckets": income_buckets,
    }
    try:
        if from_store and proxy_bias:
            raise ValueError("--proxy-bias is a simulated variant: not with --from-store")
        given = [flag for flag, value in store_only.items() if value is not None]
        if given and not from_store:
            raise ValueError(f"{', '.join(given)} only with --from-store")
        if from_store:
            observed_thresholds = ObservedThresholds(
                approval_ratio_min=_ratio(approval_threshold, "approval-threshold"),
                limit_ratio_min=_ratio(limit_threshold, "limit-threshold"),
                min_group_size=30 if min_group_size is None else min_group_size,
                income_buckets=3 if income_buckets is None else income_buckets,
            )
        else:
            thresholds = FairnessThresholds(
                approval_ratio_min=_ratio(approval_threshold, "approval-threshold"),
                limit_ratio_min=_ratio(limit_threshold, "limit-threshold"),
                min_group_size=50 if min_group_size is None else min_group_size,
            )
    except (ValueError, ValidationError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    if from_store:
        _fairness_from_store(db, indexer_db, groups, observed_thresholds, json_out)
        return
    try:
        report = run_fairness(seed=seed, n=n, thresholds=thresholds, proxy_bias=proxy_bias)
    except LendingError as exc:
        _fail(exc)
    typer.echo(report.model_dump_json(indent=2) if json_out else render_fairness(report))
    if not report.passed:
        _fail(FairnessThresholdError(report.failures))


def _fairness_from_store(
    db: str | None,
    indexer_db: str | None,
    groups_file: Path | None,
    thresholds: ObservedThresholds,
    json_out: bool,
) -> None:
    """The fairness report over the stored decisions (exit 3 when a ratio fails)."""
    url = db or default_database_url()
    try:
        groups = read_groups_file(groups_file) if groups_file else None
        credit = make_engine(url)
        indexed = make_engine(indexer_db) if indexer_db and indexer_db != url else credit
        report = observed_fairness(credit, indexed, groups, thresholds)
    except LendingError as exc:
        _fail(exc)
    except Exception as exc:  # a database that cannot be opened or read
        typer.echo(f"error: cannot read decisions, farmers or loans from {url}: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    typer.echo(report.model_dump_json(indent=2) if json_out else render_observed(report))
    if not report.passed:
        _fail(FairnessThresholdError(report.failures))


def _fail(exc: LendingError) -> NoReturn:
    """Print the named error and exit with its code (lending.errors.exit_code_for)."""
    typer.echo(f"{type(exc).__name__}: {exc}", err=True)
    raise typer.Exit(exit_code_for(exc))


def _ratio(text: str, flag: str) -> Decimal:
    """A ratio in (0, 1] from its decimal text."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"--{flag} {text!r} is not a number like 0.80") from None
    if not value.is_finite() or not 0 < value <= 1:
        raise ValueError(f"--{flag} {text} must be in (0, 1]")
    return value


def _read_json(path: Path) -> Any:
    """A JSON file (numbers with fractions as Decimal), with a clear error."""
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, json.JSONDecodeError) as exc:
        raise CreditError(f"cannot read profile {path}: {exc}") from None


def _replay_json(record: DecisionRecord, result: ReplayResult) -> dict[str, Any]:
    """The stored record and the replay verdict as one JSON object."""
    return {
        "record": record.model_dump(mode="json"),
        "content_hash": record.content_hash,
        "replay": {
            "matches": result.matches,
            "differences": list(result.differences),
            "stored_hash": result.stored_hash,
            "recomputed_hash": result.recomputed_hash,
        },
    }


_OUTCOME_ZH = {"approve": "批准", "refer": "转人工审核", "decline": "拒绝"}


def render_decision(record: DecisionRecord, result: ReplayResult) -> str:
    """A stored decision in plain English and Chinese, with the replay verdict."""
    d = record.decision
    lines = [
        f"Decision {record.decision_id}  ({record.decided_at.isoformat()})",
        f"  Farmer   {d.farmer_id}",
        f"  Lender   {record.lender}",
        f"  Profile  block {d.profile_block_number:,} {d.profile_block_hash}, as of "
        f"{d.profile_as_of.isoformat()}",
        f"  Model    {d.model_version}",
        f"  Policy   {d.policy.name} {d.policy_hash[:12]}; product {d.policy.product.code}",
        f"  Score    {d.score} -> band {d.band} -> {d.outcome.value.upper()} "
        f"({_OUTCOME_ZH[d.outcome.value]})",
        f"  Limit    ¥{format_fen(d.limit_fen)} (base ¥{format_fen(d.base_limit_fen)}, "
        f"product max ¥{format_fen(d.policy.product.max_limit_fen)})",
    ]
    lines += _price_lines(d.pricing, d.disclosure)
    lines += ["", "  Points by feature (value, points / maximum):"]
    lines += [f"    {p.name:<28} {p.value:>12,}  {p.points:>3} / {p.max_points}" for p in d.points]
    lines += ["", "  Reasons / 原因:"]
    for i, r in enumerate(d.reasons, 1):
        lines += [
            f"    {i}. {r.code} (-{r.points_lost} points)",
            f"       {r.text_en} {r.improve_en}",
            f"       {r.text_zh}{r.improve_zh}",
        ]
    for note in d.notes:
        lines += [f"  Note {note.code}: {note.text_en}", f"       {note.text_zh}"]
    verdict = "MATCH" if result.matches else "MISMATCH in " + ", ".join(result.differences)
    lines += [
        "",
        f"  Replay: {verdict} (stored {result.stored_hash[:16]}.., recomputed "
        f"{result.recomputed_hash[:16]}..)",
        f"  Record content hash {record.content_hash}",
    ]
    return "\n".join(lines)


def _price_lines(pricing: Any, disclosure: Any) -> list[str]:
    """Price, cap rule and headline disclosure figures."""
    if pricing is None:
        return ["  Price    no offer"]
    offered = pricing.offered_rate_bps
    rate = f"{Decimal(offered).scaleb(-2)}% ({offered} bps)" if offered is not None else "none"
    lines = [
        f"  Price    {rate}; band rate {pricing.band_rate_bps} bps; cap {pricing.cap_pct}% by "
        f"{pricing.cap_rule} -> {pricing.cap_action.value}"
    ]
    if disclosure is not None:
        lines.append(
            f"  Disclosure  APR (Reg Z) {disclosure.apr_regz_pct:.2f}%, PBoC annualized "
            f"{disclosure.pboc_annualized_compound_pct:.2f}%, total repayment "
            f"¥{format_fen(disclosure.total_repayment_fen)} in {len(disclosure.installments)} "
            f"installments to {disclosure.maturity.isoformat()}"
        )
        lines += [f"  Warning  {w}" for w in disclosure.warnings]
    return lines


def render_fairness(report: FairnessReport) -> str:
    """The fairness report as a table of ratios, failures marked."""
    t = report.thresholds
    lines = [
        f"Fairness report — model {report.model_version[:12]}, policy {report.policy_hash[:12]}, "
        f"variant {report.variant}",
        f"  Simulated farmers {report.population:,} (seed {report.seed}); approval rate "
        f"{report.approval_rate}",
        f"  Thresholds: approval ratio >= {t.approval_ratio_min}, limit ratio in band >= "
        f"{t.limit_ratio_min}, groups of at least {t.min_group_size}",
        "",
        f"  {'metric':<15} {'attribute':<10} {'band':<5} {'ratio':>7}  lowest / highest group",
    ]
    for c in report.checks:
        low = min(c.by_group, key=lambda g: c.by_group[g])
        high = max(c.by_group, key=lambda g: c.by_group[g])
        mark = "ok  " if c.passed else "FAIL"
        lines.append(
            f"  {c.metric:<15} {c.attribute:<10} {c.band or '-':<5} {c.ratio:>7}  {mark} "
            f"{low} {c.by_group[low]} / {high} {c.by_group[high]}"
        )
    if report.skipped:
        lines.append(
            f"  Not compared (fewer than two groups of {t.min_group_size} approved farmers): "
            f"{', '.join(report.skipped)}"
        )
    lines.append("")
    lines.append("  PASSED" if report.passed else f"  FAILED: {len(report.failures)} ratio(s)")
    return "\n".join(lines)
