"""`tealedger apr`: print the disclosure of a loan given on the command line or in a JSON file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from lending.errors import InvalidAmountError, InvalidLoanTermsError, LendingError, exit_code_for
from lending.pricing.caps import CapBasis, CapPolicy, parse_cap_basis
from lending.pricing.disclosure import Disclosure, disclose
from lending.pricing.lpr import load_lpr_table
from lending.pricing.lpr_cli import lpr_app
from lending.pricing.schedule import TEA_FLUSH_MONTHS, ScheduleKind, ScheduleTerms
from lending.pricing.units import format_fen, yuan_to_fen

FILE_KEYS = (
    "principal_fen",
    "principal_yuan",
    "rate_bps",
    "term_months",
    "kind",
    "start",
    "upfront_fee_fen",
    "upfront_fee_yuan",
    "periodic_fee_fen",
    "periodic_fee_yuan",
    "grace_months",
    "flush_months",
    "penalty_rate_bps",
)

_KINDS = ", ".join(k.value for k in ScheduleKind)


def register(app: typer.Typer) -> None:
    """Add the `apr` command and the `lpr` group to the root `tealedger` app."""
    app.command("apr")(apr)
    app.add_typer(lpr_app, name="lpr")


def apr(
    principal_fen: Annotated[
        int | None, typer.Option(help="Principal in fen (1 yuan = 100 fen).")
    ] = None,
    principal_yuan: Annotated[
        str | None, typer.Option(help="Principal in yuan, at most 2 decimals.")
    ] = None,
    rate_bps: Annotated[
        int | None, typer.Option(help="Annual contract rate in basis points (800 = 8%).")
    ] = None,
    term_months: Annotated[int | None, typer.Option(help="Term in months.")] = None,
    kind: Annotated[str | None, typer.Option(help=f"Schedule kind: {_KINDS}.")] = None,
    start: Annotated[
        str | None, typer.Option(help="Disbursement / contract date YYYY-MM-DD (default today).")
    ] = None,
    upfront_fee_fen: Annotated[int | None, typer.Option(help="Upfront fee in fen.")] = None,
    upfront_fee_yuan: Annotated[str | None, typer.Option(help="Upfront fee in yuan.")] = None,
    periodic_fee_fen: Annotated[
        int | None, typer.Option(help="Fee with every installment, in fen.")
    ] = None,
    periodic_fee_yuan: Annotated[
        str | None, typer.Option(help="Fee with every installment, in yuan.")
    ] = None,
    grace_months: Annotated[
        int | None, typer.Option(help="Months before the first installment.")
    ] = None,
    flush_months: Annotated[
        str | None,
        typer.Option(help="Seasonal due months, comma-separated (default 4,5,6,7,9,10)."),
    ] = None,
    penalty_rate_bps: Annotated[
        int | None, typer.Option(help="Extra annual rate on overdue amounts, in bps.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="JSON file with the loan (same keys).")
    ] = None,
    hard_cap_bps: Annotated[int, typer.Option(help="Hard cap on the annualized rate.")] = 2400,
    lpr_multiple: Annotated[int, typer.Option(help="LPR cap multiple.")] = 4,
    no_lpr_cap: Annotated[bool, typer.Option("--no-lpr-cap", help="Only the hard cap.")] = False,
    cap_basis: Annotated[
        str, typer.Option(help="strictest, regz_apr, pboc_simple or pboc_compound.")
    ] = CapBasis.STRICTEST.value,
    lpr_table: Annotated[
        Path | None,
        typer.Option(
            help="LPR table JSON (default: $TEALEDGER_LPR_TABLE, the user's or the "
            "shipped table; see `tealedger lpr show`)."
        ),
    ] = None,
    allow_over_cap: Annotated[
        bool, typer.Option("--allow-over-cap", help="Show the disclosure even above the cap.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the disclosure as JSON.")] = False,
) -> None:
    """Print the APR / annualized-rate disclosure and schedule of a loan offer."""
    options = {
        "principal_fen": principal_fen,
        "principal_yuan": principal_yuan,
        "rate_bps": rate_bps,
        "term_months": term_months,
        "kind": kind,
        "start": start,
        "upfront_fee_fen": upfront_fee_fen,
        "upfront_fee_yuan": upfront_fee_yuan,
        "periodic_fee_fen": periodic_fee_fen,
        "periodic_fee_yuan": periodic_fee_yuan,
        "grace_months": grace_months,
        "flush_months": flush_months,
        "penalty_rate_bps": penalty_rate_bps,
    }
    try:
        values = {**(_read_file(file) if file else {}), **_given(options)}
        terms = terms_from_mapping(values)
        basis = parse_cap_basis(cap_basis)
        policy = CapPolicy(hard_cap_bps, lpr_multiple, not no_lpr_cap, basis)
        table = load_lpr_table(lpr_table) if lpr_table else None
        result = disclose(terms, policy, table, enforce_caps=not allow_over_cap)
    except LendingError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=exit_code_for(exc)) from None
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(result.to_json() if json_out else render(result))


def terms_from_mapping(values: Mapping[str, Any]) -> ScheduleTerms:
    """ScheduleTerms from file/option values, with one clear error per bad or missing field."""
    unknown = sorted(set(values) - set(FILE_KEYS))
    if unknown:
        raise InvalidLoanTermsError(
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(FILE_KEYS)}"
        )
    for required in ("rate_bps", "term_months", "kind"):
        if values.get(required) is None:
            flag = required.replace("_", "-")
            raise InvalidLoanTermsError(f"missing {required}: pass --{flag} or put it in the file")
    return ScheduleTerms(
        principal_fen=_money(values, "principal", required=True),
        annual_rate=_int(values, "rate_bps"),
        term_months=_int(values, "term_months"),
        kind=ScheduleKind(_kind(values["kind"])),
        start=_date(values.get("start")),
        upfront_fee_fen=_money(values, "upfront_fee"),
        periodic_fee_fen=_money(values, "periodic_fee"),
        grace_months=_int(values, "grace_months", 0),
        flush_months=_months(values.get("flush_months")),
        penalty_rate_bps=_int(values, "penalty_rate_bps", 0),
    )


def render(d: Disclosure) -> str:
    """Human-readable disclosure with the schedule as a table."""
    status = "within" if d.rate_cap.within_cap else "EXCEEDED"
    fields = [
        ("Start / maturity", f"{d.start.isoformat()} / {d.maturity.isoformat()}"),
        ("Principal", f"¥{format_fen(d.principal_fen)}"),
        ("Contract rate", f"{d.annual_rate_pct}% a year"),
        ("Upfront fee", f"¥{format_fen(d.upfront_fee_fen)}"),
        ("Amount financed", f"¥{format_fen(d.amount_financed_fen)}"),
        ("Total interest", f"¥{format_fen(d.total_interest_fen)}"),
        ("Total fees", f"¥{format_fen(d.total_fees_fen)}"),
        ("Finance charge", f"¥{format_fen(d.finance_charge_fen)}"),
        ("Total of payments", f"¥{format_fen(d.total_repayment_fen)}"),
        ("APR (US Reg Z App. J)", f"{d.apr_regz_pct:.2f}%  (unit-period {d.regz_unit_period})"),
        (
            "PBoC annualized (compound)",
            f"{d.pboc_annualized_compound_pct:.2f}%  ((1 + monthly IRR)^12 - 1)",
        ),
        ("PBoC annualized (simple)", f"{d.pboc_annualized_simple_pct:.2f}%  (monthly IRR x 12)"),
        ("Rate cap", f"{d.rate_cap.cap_pct}% by rule {d.rate_cap.rule} ({status})"),
    ]
    if d.penalty_cap is not None:
        late = "within" if d.penalty_cap.within_cap else "EXCEEDED"
        fields.append(
            (
                "Overdue rate incl. penalty",
                f"{d.penalty_cap.rate_pct:.2f}% vs cap {d.penalty_cap.cap_pct}% ({late})",
            )
        )
    lines = [f"Loan disclosure — {d.kind_label}"]
    lines += [f"  {label:<28}{value}" for label, value in fields]
    lines.append("")
    lines.append(
        f"{'#':>3} {'due':<10} {'principal':>14} {'interest':>12} {'fee':>10} "
        f"{'total':>14} {'balance':>14}"
    )
    for x in d.installments:
        lines.append(
            f"{x.number:>3} {x.due.isoformat():<10} {format_fen(x.principal_fen):>14} "
            f"{format_fen(x.interest_fen):>12} {format_fen(x.fee_fen):>10} "
            f"{format_fen(x.total_fen):>14} {format_fen(x.balance_fen):>14}"
        )
    return "\n".join(lines)


def _given(options: Mapping[str, Any]) -> dict[str, Any]:
    """Only the options actually passed on the command line (they override the file)."""
    return {k: v for k, v in options.items() if v is not None}


def _read_file(path: Path) -> dict[str, Any]:
    """The loan object from a JSON file; numbers with a fraction become Decimal, never float."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except OSError as exc:
        raise InvalidLoanTermsError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InvalidLoanTermsError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidLoanTermsError(f"{path} must hold a JSON object with the loan fields")
    return data


def _money(values: Mapping[str, Any], name: str, *, required: bool = False) -> int:
    """An amount given as <name>_fen (int) or <name>_yuan (decimal), not both."""
    fen, yuan = values.get(f"{name}_fen"), values.get(f"{name}_yuan")
    if fen is not None and yuan is not None:
        raise InvalidAmountError(f"give {name} in fen or in yuan, not both")
    if yuan is not None:
        if isinstance(yuan, bool) or not isinstance(yuan, str | int | Decimal):
            raise InvalidAmountError(f"{name}_yuan {yuan!r} must be a number of yuan")
        return yuan_to_fen(yuan if isinstance(yuan, str) else Decimal(yuan), f"{name}_yuan")
    if fen is None:
        if required:
            flag = name.replace("_", "-")
            raise InvalidAmountError(f"missing {name}: pass --{flag}-fen or --{flag}-yuan")
        return 0
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise InvalidAmountError(f"{name}_fen {fen!r} must be a whole number of fen")
    return fen


def _int(values: Mapping[str, Any], name: str, default: int | None = None) -> int:
    """An int field (bool and fractional numbers refused)."""
    value = values.get(name, default)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidLoanTermsError(f"{name} {value!r} must be a whole number")
    return value


def _kind(value: object) -> str:
    """Schedule kind; dashes accepted for underscores."""
    text = str(value).strip().lower().replace("-", "_")
    if text not in {k.value for k in ScheduleKind}:
        raise InvalidLoanTermsError(f"unknown schedule kind {value!r}; use one of {_KINDS}")
    return text


def _date(value: object) -> date:
    """ISO date, today by default."""
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidLoanTermsError(f"start {value!r} is not a date; use YYYY-MM-DD") from None


def _months(value: object) -> tuple[int, ...]:
    """Flush months from '4,5,6' or a JSON list."""
    if value is None:
        return TEA_FLUSH_MONTHS
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise InvalidLoanTermsError(f"flush_months {value!r} must be like 4,5,6,7,9,10")
    try:
        return tuple(int(str(m).strip()) for m in items)
    except ValueError:
        raise InvalidLoanTermsError(
            f"flush_months {value!r} must be month numbers like 4,5,6,7,9,10"
        ) from None
