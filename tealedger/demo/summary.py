"""The demo's closing table: what the season and its lending put on chain, at a glance.

Its own module because it reads both stages' tallies (tealedger.demo.season and
tealedger.demo.lending), and the lending stage builds on the season: neither imports the other
for it.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.table import Table

from tealedger.demo.lending import LendingSummary
from tealedger.demo.season import SeasonSummary


def summary_table(summary: SeasonSummary, lending: LendingSummary | None = None) -> Table:
    """The season (and its lending, when run) at a glance."""
    table = Table(title="season on chain")
    table.add_column("figure")
    table.add_column("value", justify="right")
    transactions = summary.new_transactions + (lending.new_transactions if lending else 0)
    gas = summary.gas_used + (lending.gas_used if lending else 0)
    seconds = summary.seconds + (lending.seconds if lending else 0.0)
    rows: list[tuple[str, Callable[[], str]]] = [
        ("farmers", lambda: f"{summary.farmers:,}"),
        ("plots", lambda: f"{summary.plots:,}"),
        ("harvest records", lambda: f"{summary.harvests:,}"),
        ("fresh leaf", lambda: f"{summary.fresh_leaf_grams / 1e6:,.1f} t"),
        ("made-tea lots", lambda: f"{summary.made_tea_lots:,}"),
        ("made tea", lambda: f"{summary.made_tea_grams / 1e6:,.1f} t"),
        ("lots sold", lambda: f"{summary.lots_sold:,}"),
        ("sales", lambda: f"¥{summary.sales_fen / 100:,.2f}"),
        ("quality failures", lambda: f"{summary.quality_failures:,}"),
        ("lots recalled", lambda: f"{summary.recalled_lots:,}"),
    ]
    rows += [(name, lambda v=value: v) for name, value in (lending.rows() if lending else [])]
    rows += [
        ("new transactions", lambda: f"{transactions:,}"),
        ("gas used (this run)", lambda: f"{gas:,}"),
        ("seconds", lambda: f"{seconds:,.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, value())
    return table
