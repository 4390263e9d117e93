"""`tealedger lpr show|update`: the LPR table in use, and recording a newly published fixing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, NoReturn

import typer

from lending.errors import LPR_UPDATE_COMMAND, LendingError, LprTableError, exit_code_for
from lending.pricing.lpr import (
    TABLE_ENV,
    LprTable,
    load_lpr_table,
    save_lpr_table,
    shipped_lpr_table,
    user_table_path,
)

lpr_app = typer.Typer(
    help="The LPR table the rate cap uses: show it, record a new fixing.", no_args_is_help=True
)

SHOWN_FIXINGS = 6


@lpr_app.command("show")
def show(
    on: Annotated[
        str | None, typer.Option(help="Is the table valid on this date? (default today)")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """The table in use (its file, version, validity and last fixings)."""
    try:
        day = _day(on, "--on") if on else date.today()
        table = load_lpr_table()
    except LendingError as exc:
        _fail(exc)
    if json_out:
        typer.echo(table.to_json(), nl=False)
        return
    typer.echo(render(table, day))


@lpr_app.command("update")
def update(
    fixing_date: Annotated[str, typer.Option("--date", help="Fixing date YYYY-MM-DD.")],
    one_year_bps: Annotated[int, typer.Option(help="1-year LPR in basis points (300 = 3.00%).")],
    five_year_bps: Annotated[int, typer.Option(help="5-year LPR in basis points.")],
    valid_through: Annotated[
        str | None,
        typer.Option(help="Last date the fixing is known current (default: the day before the "
                     "next regular fixing on the 20th)."),
    ] = None,
) -> None:  # fmt: skip
    """Record a published fixing in the user's table (never the shipped one)."""
    try:
        # The first update starts from the shipped table; the user's table from then on.
        base = load_lpr_table() if user_table_path().exists() else shipped_lpr_table()
        table = base.with_fixing(
            _day(fixing_date, "--date"),
            one_year_bps,
            five_year_bps,
            _day(valid_through, "--valid-through") if valid_through else None,
        )
        path = save_lpr_table(table)
    except LendingError as exc:
        _fail(exc)
    typer.echo(f"wrote {path}")
    typer.echo(render(load_lpr_table(path), date.today()))


def render(table: LprTable, on: date) -> str:
    """The table's provenance, validity on `on` and its last fixings."""
    where = table.origin
    if table.origin == shipped_lpr_table().origin:
        where += f" (no user table at {user_table_path()}; ${TABLE_ENV} overrides)"
    valid = "valid" if on <= table.covers_through else "STALE: pricing is refused"
    lines = [
        f"LPR table {table.version}",
        f"  file            {where}",
        f"  valid through   {table.covers_through.isoformat()}  ({valid} on {on.isoformat()})",
        f"  {'fixing':<15} {'1-year':>7} {'5-year':>7}",
    ]
    five_year = dict(table.five_year_bps)
    for fx in table.fixings[-SHOWN_FIXINGS:]:
        bps = five_year.get(fx.date)
        five = "-" if bps is None else f"{Decimal(bps).scaleb(-2)}%"
        lines.append(f"  {fx.date.isoformat():<15} {fx.rate_pct:>6}% {five:>7}")
    if on > table.covers_through:
        lines.append(f"  record the fixings published since with `{LPR_UPDATE_COMMAND}`")
    return "\n".join(lines)


def _day(text: str, flag: str) -> date:
    """An ISO date option."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise LprTableError(f"{flag} {text!r} is not a date; use YYYY-MM-DD") from None


def _fail(exc: LendingError) -> NoReturn:
    """Print the error and exit with its code."""
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exit_code_for(exc))
