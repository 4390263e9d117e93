"""The `tealedger` command: nodes, deployment and each package's commands."""

from __future__ import annotations

import contextlib
import importlib
import shutil
import signal
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from api import cli as api_cli
from chain.client import ChainClient
from chain.config import Backend, ChainSettings
from chain.errors import ChainError, ConfigError
from chain.nodes import ProcessNode, make_node
from indexer import cli as index_cli
from lending.credit import cli as credit_cli
from lending.errors import ExitCode, LendingError, exit_code_for
from lending.pricing import cli as lending_cli
from tealedger import __version__
from tealedger.system import deploy_system
from traceability import cli as traceability_cli
from traceability.errors import TraceabilityError

if TYPE_CHECKING:
    from api.core.demo_status import StatusWriter
    from api.core.settings import ApiSettings
    from api.regulator.service import ScanReport
    from tealedger.demo.lending import LendingSummary

app = typer.Typer(
    name="tealedger",
    help="Supply-chain lending for tea cooperatives on an Ethereum ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
node_app = typer.Typer(help="Start, stop and check the local chain node.", no_args_is_help=True)
app.add_typer(node_app, name="node")
risk_app = typer.Typer(help="The risk monitor: rules over the indexed chain.", no_args_is_help=True)
app.add_typer(risk_app, name="risk")
api_cli.register(app)
lending_cli.register(app)
credit_cli.register(app)
traceability_cli.register(app)
index_cli.register(app)
out = Console(width=max(shutil.get_terminal_size().columns, 120))  # addresses never cropped
err = Console(stderr=True, soft_wrap=True)  # error lines stay whole for grep and logs

BackendOpt = Annotated[
    Backend | None,
    typer.Option("--backend", "-b", help="embedded | ganache | anvil | rpc (default: settings)"),
]
PortOpt = Annotated[int | None, typer.Option("--port", help="Local node port (default 8545)")]
RpcOpt = Annotated[str | None, typer.Option("--rpc-url", help="JSON-RPC URL for --backend rpc")]


def settings_from(
    backend: Backend | None = None, port: int | None = None, rpc_url: str | None = None
) -> ChainSettings:
    """Settings from env/file, overridden by command-line flags."""
    overrides = {"backend": backend, "port": port, "rpc_url": rpc_url}
    return ChainSettings(**{k: v for k, v in overrides.items() if v is not None})


@app.command()
def version() -> None:
    """Print the tealedger version."""
    out.print(f"tealedger {__version__}")


@node_app.command("start")
def node_start(backend: BackendOpt = None, port: PortOpt = None) -> None:
    """Start the local node in the background (state persists under the data dir)."""
    settings = settings_from(backend, port)
    node = ChainClient(settings).node
    node.start()
    status = node.status()
    out.print(f"{status.backend} node running at {status.url} (chain id {status.chain_id})")


@node_app.command("stop")
def node_stop(backend: BackendOpt = None, port: PortOpt = None) -> None:
    """Stop the local node (it saves its state first)."""
    node = ChainClient(settings_from(backend, port)).node
    node.stop()
    out.print(f"{node.backend} node stopped")


@node_app.command("status")
def node_status(backend: BackendOpt = None, port: PortOpt = None, rpc_url: RpcOpt = None) -> None:
    """Health check: is the node answering, at which block."""
    status = ChainClient(settings_from(backend, port, rpc_url)).node.status()
    if not status.running:
        err.print(f"{status.backend} node at {status.url} is not running")
        raise typer.Exit(code=1)
    out.print(
        f"{status.backend} node at {status.url}: chain id {status.chain_id}, "
        f"block {status.block}" + (f", pid {status.pid}" if status.pid else "")
    )


@app.command()
def deploy(backend: BackendOpt = None, port: PortOpt = None, rpc_url: RpcOpt = None) -> None:
    """Deploy the contract system (a no-op for contracts whose code is unchanged)."""
    client = ChainClient(settings_from(backend, port, rpc_url))
    client.node.status()  # an unreachable node is the first thing to report
    _ = client.w3
    _print_deployments(client, deploy_system(client))


def _print_deployments(client: ChainClient, results: list) -> None:
    """Table of what is deployed where."""
    table = Table(title=f"contracts on chain {client.w3.eth.chain_id} ({client.node.url})")
    for column in ("contract", "address", "block", "status"):
        table.add_column(column)
    for entry, created in results:
        status = "deployed" if created else "unchanged"
        table.add_row(entry.name, entry.address, str(entry.block_number), status)
    out.print(table)
    out.print(f"registry: {client.registry.path}")


@app.command()
def demo(
    backend: BackendOpt = None,
    port: PortOpt = None,
    farmers: Annotated[int, typer.Option(help="Farmers in the region", min=1)] = 300,
    seed: Annotated[int, typer.Option(help="Generator seed (same seed, same season)")] = 2026,
    serve_port: Annotated[int, typer.Option(help="Port of the HTTP service")] = 8000,
) -> None:
    """Start the local node, deploy, serve, then run a tea season and its lending behind the
    service (its home page shows the progress), index it and scan it."""
    from api.core.demo_status import DemoState, StatusWriter
    from api.core.settings import ApiSettings
    from tealedger.demo.service import start_service

    client = ChainClient(settings_from(backend, port))
    if client.settings.backend == "embedded":  # the service, in its own process, must follow it
        raise ConfigError(
            "the demo serves its season from a node the service can follow: use --backend "
            "ganache (the default) or anvil; the embedded EVM lives inside one process"
        )
    client.node.start()
    _print_deployments(client, deploy_system(client))
    api_settings = ApiSettings(data_dir=client.settings.data_dir)
    status = StatusWriter(api_settings.data_dir, farmers)
    # `kill` (SIGTERM) ends the run like Ctrl-C, so its status says it stopped.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(128 + signal.SIGTERM))
    try:
        # The service starts first (a service of the last run goes on: it follows this
        # database), so its pages answer at once and fill in as its follower indexes the season.
        url = start_service(api_settings, client.settings, serve_port)
        out.print(f"the service answers at {url}; its home page shows the demo's progress")
        _demo_season(client, api_settings, status, url, farmers, seed)
    except BaseException as exc:
        status.finish(DemoState.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    status.finish(DemoState.DONE)
    out.print(f"node at {client.node.url}; stop it and the service with `tealedger stop`")


def _demo_season(
    client: ChainClient,
    api_settings: ApiSettings,
    status: StatusWriter,
    url: str,
    farmers: int,
    seed: int,
) -> None:
    """The demo's work behind the running service: logins, season, lending, index, scan."""
    from api.core.db import open_database
    from api.regulator.service import scan_database
    from indexer.archive import IndexArchive
    from tealedger.demo.lending import run_lending
    from tealedger.demo.season import run_season
    from tealedger.demo.service import demo_logins, index_chain
    from tealedger.demo.summary import summary_table

    # Old events are read from the index the service's follower fills, as the service reads
    # them: a node keeping only its latest blocks (TEALEDGER_HISTORY_BLOCKS) serves the rest.
    client.use_archive(IndexArchive(open_database(api_settings.database_url)))
    logins = demo_logins(client, api_settings)
    _print_logins(url, logins)  # people may log in while the season fills in
    region, summary = run_season(client, farmers, seed, out, api_settings, status)
    lending = run_lending(client, region, summary, api_settings, out, status)
    out.print(summary_table(summary, lending))
    _print_clock(lending)
    progress = index_chain(client, api_settings.database_url)
    out.print(f"indexed to block {progress.checkpoint:,} (the chain's head)")
    _print_scan(scan_database(api_settings.database_url, open_database(api_settings.database_url)))
    _print_logins(url, logins)


def _print_scan(report: ScanReport) -> None:
    """What the regulator's risk monitor found in the season (the same scan as its page)."""
    found = ", ".join(f"{rule} {n}" for rule, n in sorted(report.by_rule.items())) or "none"
    out.print(
        f"risk monitor: {len(report.rules)} rules over the indexed chain, {report.findings} "
        f"finding(s) ({found}), {report.new} new alert(s); the regulator sees them at /reg"
    )


def _print_clock(lending: LendingSummary) -> None:
    """Say that the loans moved the development chain's clock, and why (docs/demo.md)."""
    days = lending.days_advanced
    if days:
        out.print(
            f"[yellow]time travel:[/] escrows run on block time, so the demo moved this "
            f"development chain's clock {days:,.1f} days forward (evm_increaseTime) to reach "
            "due dates, overdue loans and a default; see docs/demo.md",
            highlight=False,
        )


@app.command()
def stop(backend: BackendOpt = None, port: PortOpt = None) -> None:
    """Stop what `tealedger demo` left running: the HTTP service and the local node."""
    from api.core.settings import ApiSettings
    from tealedger.demo.service import stop_service

    settings = settings_from(backend, port)
    if stop_service(ApiSettings(data_dir=settings.data_dir)):
        out.print("service stopped")
    for chosen in [backend] if backend else _recorded_backends(settings):
        node = ChainClient(settings.model_copy(update={"backend": chosen})).node
        node.stop()
        out.print(f"{node.backend} node stopped")


def _recorded_backends(settings: ChainSettings) -> list[Backend]:
    """The local nodes the data dir records as started (`demo --backend anvil` too), else the
    configured backend."""
    started: list[Backend] = ["ganache", "anvil"]
    nodes = {b: make_node(settings.model_copy(update={"backend": b})) for b in started}
    found = [b for b, n in nodes.items() if isinstance(n, ProcessNode) and n.pidfile.exists()]
    return found or [settings.backend]


@risk_app.command("scan")
def risk_scan(
    rule: Annotated[
        list[str] | None,
        typer.Option("--rule", help="Run only this rule (repeat for more; default: every rule)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Default: $DATABASE_URL, else the data dir's file."),
    ] = None,
) -> None:
    """Run the risk rules over the indexed chain and keep their findings as alerts."""
    from api.core.db import open_database
    from api.core.errors import ApiError
    from api.core.settings import ApiSettings
    from api.regulator.service import scan_database
    from risk.scan import UnknownRuleError

    settings = ApiSettings(**({"database_url": database_url} if database_url else {}))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_database(settings.database_url)
    try:
        report = scan_database(settings.database_url, engine, rule or None)
    except UnknownRuleError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=ExitCode.USAGE) from None
    except ApiError as exc:
        err.print(f"[bold red]error:[/] {exc.detail}", highlight=False)
        raise typer.Exit(code=ExitCode.ERROR) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    out.print(
        f"scanned with {', '.join(report.rules) or 'no rules'} up to chain time "
        f"{report.chain_time}: {report.findings} finding(s), {report.new} new alert(s), "
        f"{report.seen_again} seen again",
        highlight=False,
    )
    table = Table(title="findings per rule")
    table.add_column("rule")
    table.add_column("findings", justify="right")
    for name in report.rules:
        table.add_row(name, str(report.by_rule.get(name, 0)))
    out.print(table)


def _print_logins(url: str, logins: list) -> None:
    """Where the service runs and a key per audience (new keys every run)."""
    table = Table(title=f"service at {url}  (API docs {url}/docs)")
    for column in ("audience", "organisation", "API key (X-API-Key / page login)"):
        table.add_column(column)
    for login in logins:
        table.add_row(login.role, login.name, login.api_key)
    out.print(table)
    out.print(f"cooperative pages: {url}/login · public trace: {url}/trace/<lot id>")


# py-evm and py_ecc raise the recursion limit to 100,000 at import; a parser recursing that
# deep overflows the C stack and kills the process (the HTTP service with its indexer) where
# it should raise RecursionError. Both are imported first so that no later import raises it
# again.
RECURSION_LIMIT = 3000


def sane_recursion_limit() -> None:
    """Import the libraries that raise the recursion limit, then set it back to a safe value."""
    for module in ("eth", "py_ecc"):
        with contextlib.suppress(ImportError):  # both come with web3's tester extras
            importlib.import_module(module)
    sys.setrecursionlimit(RECURSION_LIMIT)


def main() -> None:
    """Console entry point: an error becomes one clear line and its ExitCode."""
    sane_recursion_limit()
    try:
        app()
    except (ChainError, TraceabilityError, LendingError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(exit_code_for(exc))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        err.print(f"[bold red]error:[/] invalid settings: {problems}", highlight=False)
        sys.exit(ExitCode.USAGE)


if __name__ == "__main__":
    main()
