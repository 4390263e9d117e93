"""Traceability commands: `tealedger record harvests`, `tealedger trace`, `tealedger recall-impact`.

The chain comes from `ChainClient()` (TEALEDGER_BACKEND, TEALEDGER_PORT, ... or tealedger.toml)
and contract addresses from its deployment registry; tests replace `make_client`.
"""

from __future__ import annotations

import json
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.tree import Tree

from chain.client import ChainClient
from chain.errors import ChainError
from traceability import contracts
from traceability.errors import RoleMissingError, TraceabilityError, role_name
from traceability.files import RowError, read_harvest_file
from traceability.lineage import Lineage, LineageReader, LotNode, RecallImpact
from traceability.models import Bytes32, HarvestRecord, LotKind
from traceability.service import HarvestReport, Outcome, RecordingService

EXIT_REJECTED = 1  # some rows were rejected (the valid ones were still recorded)
EXIT_FAILED = 2  # nothing was done: no chain, not deployed, unreadable file, no signer

console = Console(width=max(shutil.get_terminal_size().columns, 120))  # ids never cropped
err = Console(stderr=True, soft_wrap=True)
_BYTES32 = TypeAdapter(Bytes32)


def make_client() -> ChainClient:
    """The chain client every command uses (default settings: environment, tealedger.toml)."""
    return ChainClient()


def register(app: typer.Typer) -> None:
    """Add the traceability commands to the root `tealedger` app."""
    record = typer.Typer(help="Record supply-chain events on chain.", no_args_is_help=True)
    record.command("harvests")(record_harvests)
    app.add_typer(record, name="record")
    app.command("trace")(trace)
    app.command("recall-impact")(recall_impact)


# ---------------------------------------------------------------------- helpers


def _fail(message: str) -> typer.Exit:
    """Print an error and return the exit to raise."""
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(EXIT_FAILED)


def _lot_argument(value: str) -> bytes:
    """Parse a 0x lot id or exit with a clear message."""
    try:
        return _BYTES32.validate_python(value)
    except ValidationError:
        raise typer.BadParameter(f"{value!r} is not a lot id (0x + 64 hex digits)") from None


def _signer(client: ChainClient, role: bytes, account: int | None) -> int:
    """The account index to sign with: given, or the first account holding `role`."""
    accounts = client.accounts
    if account is not None:
        if not 0 <= account < len(accounts):
            raise RoleMissingError(f"--account {account}: there are {len(accounts)} accounts")
        return account
    trace_contract = contracts.tea_trace(client)
    for index, acct in enumerate(accounts):
        if trace_contract.functions.hasRole(role, acct.address).call():
            return index
    raise RoleMissingError(
        f"none of the {len(accounts)} signing accounts holds {role_name(role)}: ask the TeaTrace "
        "admin to grant it, or choose an account with --account"
    )


def _short(value: bytes | str) -> str:
    """0x1234…abcd."""
    text = "0x" + value.hex() if isinstance(value, bytes) else value
    return f"{text[:6]}…{text[-4:]}"


# ---------------------------------------------------------------------- record harvests


def record_harvests(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="harvests .csv or .json"),
    ],
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=500, help="records per transaction")
    ] = 100,
    account: Annotated[
        int | None,
        typer.Option("--account", help="signing account index (default: first cooperative)"),
    ] = None,
    deliver_to: Annotated[
        str | None,
        typer.Option(
            "--deliver-to",
            help="address of the factory the leaf was delivered to (it must accept you): "
            "each new lot is held by it",
        ),
    ] = None,
) -> None:
    """Record a file of harvests; re-submitting the same file records nothing twice."""
    try:
        rows, row_errors = read_harvest_file(file)
        client = make_client()
        service = RecordingService(
            client, _signer(client, contracts.COOPERATIVE_ROLE, account), batch_size=batch_size
        )
        started = time.monotonic()
        report = _record_with_progress(service, [r.record for r in rows], deliver_to)
    except (TraceabilityError, ChainError) as exc:
        raise _fail(str(exc)) from None
    rejected = row_errors + [RowError(rows[o.index].where, "-", o.reason) for o in report.rejected]
    _print_summary(file, len(rows) + _rows_with_errors(row_errors), report, rejected, started)
    if rejected:
        _print_rejections(rejected)
        raise typer.Exit(EXIT_REJECTED)


def _rows_with_errors(errors: list[RowError]) -> int:
    """Distinct rows among the file-level errors."""
    return len({e.where for e in errors})


def _record_with_progress(
    service: RecordingService, records: list[HarvestRecord], deliver_to: str | None = None
) -> HarvestReport:
    """record_harvests under a rich progress bar."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task("recording harvests", total=len(records))
        advance = partial(progress.advance, task)
        return service.record_harvests(records, advance, deliver_to=deliver_to)


def _print_summary(
    file: Path, rows: int, report: HarvestReport, rejected: list[RowError], started: float
) -> None:
    """The totals of one submission."""
    table = Table(title=f"Harvests from {file.name}", show_header=False)
    table.add_row("rows in file", str(rows))
    table.add_row("recorded (new lots)", f"[green]{report.recorded}[/]")
    table.add_row("duplicates (skipped)", str(report.count(Outcome.DUPLICATE)))
    table.add_row("rejected", f"[red]{len({e.where for e in rejected})}[/]" if rejected else "0")
    table.add_row("transactions", str(len(report.transactions)))
    table.add_row("gas used", f"{report.gas_used:,}")
    table.add_row("time", f"{time.monotonic() - started:.1f} s")
    console.print(table)


def _print_rejections(rejected: list[RowError]) -> None:
    """One line per problem, so the operator can fix the file and submit it again."""
    table = Table(title="Rejected rows (fix and submit the file again)")
    table.add_column("row")
    table.add_column("field")
    table.add_column("problem")
    for error in rejected:
        table.add_row(error.where, error.field, error.message)
    console.print(table)


# ---------------------------------------------------------------------- trace


def trace(
    lot: Annotated[str, typer.Argument(help="lot id (0x...)")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="inputs shown per processing step")
    ] = 20,
) -> None:
    """Show a lot's lineage back to its harvests (farmers by pseudonym only)."""
    lot_id = _lot_argument(lot)
    try:
        lineage = LineageReader.from_client(make_client()).trace(lot_id)
    except (TraceabilityError, ChainError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(lineage.to_dict(), indent=2, ensure_ascii=False))
        return
    tree = Tree(_node_label(lineage.root))
    _add_inputs(tree, lineage.root, limit, set())
    console.print(tree)
    _print_lineage_summary(lineage)


def _node_label(node: LotNode) -> str:
    """One line describing a lot."""
    view = node.view
    recalled = " [bold red]RECALLED[/]" if view and view.recalled else ""
    h = node.harvest
    if h is not None:
        area = f", {h.plot_area_centi_mu / 100:.2f} mu" if h.plot_area_centi_mu else ""
        return (
            f"harvest [cyan]0x{node.lot.hex()}[/] · {h.grams:,} g fresh leaf · grade "
            f"{h.grade.label} ({int(h.grade)}) · picked {h.picked_date} · farmer "
            f"{_short(h.farmer)} · plot {_short(h.plot)}{area}{recalled}"
        )
    kind = "made tea" if node.kind is LotKind.MADE_TEA else node.kind.name.lower()
    where = f" · {view.state.name.lower()} · holder {_short(view.holder)}" if view else ""
    checks = "".join(
        f" · grade {a.grade.label} {'[green]pass[/]' if a.passed else '[red]fail[/]'}"
        for a in node.attestations
    )
    return f"lot [cyan]0x{node.lot.hex()}[/] · {kind} · {node.grams:,} g{where}{checks}{recalled}"


def _add_inputs(tree: Tree, node: LotNode, limit: int, seen: set[bytes]) -> None:
    """Branch for the processing step that made `node`, recursively."""
    step = node.produced_by
    if step is None:
        return
    branch = tree.add(
        f"[magenta]process {_short(step.process_id)}[/] by {_short(step.processor)} "
        f"(block {step.block_number}, {len(step.inputs)} inputs)"
    )
    if step.process_id in seen:
        branch.add("[dim](shown above)[/]")
        return
    seen.add(step.process_id)
    for child in step.inputs[:limit]:
        _add_inputs(branch.add(_node_label(child)), child, limit, seen)
    if len(step.inputs) > limit:
        branch.add(f"[dim]… and {len(step.inputs) - limit} more inputs (--limit, --json)[/]")


def _print_lineage_summary(lineage: Lineage) -> None:
    """Counts over the whole ancestry."""
    harvests = lineage.harvests()
    if not harvests:
        return
    first, last = harvests[0].picked_date, harvests[-1].picked_date
    console.print(
        f"{len(harvests)} harvests · {sum(h.grams for h in harvests):,} g fresh leaf · "
        f"{len(lineage.farmers())} farmers · {len({h.plot for h in harvests})} plots · "
        f"picked {first} to {last} · {lineage.depth()} processing levels"
    )


# ---------------------------------------------------------------------- recall impact


def recall_impact(
    lot: Annotated[str, typer.Argument(help="lot id (0x...)")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List every lot made from a lot, at any depth, and who holds it now."""
    lot_id = _lot_argument(lot)
    try:
        impact = LineageReader.from_client(make_client()).recall_impact(lot_id)
    except (TraceabilityError, ChainError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(impact.to_dict(), indent=2))
        return
    _print_impact(impact)


def _print_impact(impact: RecallImpact) -> None:
    """One line per descendant (ids whole, for copying into `tealedger trace`), then holders."""
    console.print(f"[bold]Lots made from 0x{impact.lot.hex()}[/]: {len(impact.descendants)}")
    for d in impact.descendants:
        flag = " [bold red]RECALLED[/]" if d.view.recalled else ""
        console.print(
            f"  depth {d.depth}  0x{d.lot.hex()}  {d.view.grams:,} g  "
            f"{d.view.state.name.lower()}  holder {d.view.holder}{flag}",
            soft_wrap=True,
        )
    for holder, lots in impact.holders().items():
        console.print(f"holder {holder}: {len(lots)} live lot(s)", soft_wrap=True)
