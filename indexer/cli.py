"""`tealedger index`: catch up (or follow the head, or rebuild from raw events) with progress."""

from __future__ import annotations

import logging
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from chain.client import ChainClient
from chain.compiler import compile_contracts
from chain.config import Backend, ChainSettings
from chain.errors import ChainError
from indexer.db import default_database_url, make_engine
from indexer.engine import IndexerConfig
from indexer.engine import Progress as IndexProgress
from indexer.errors import IndexerError
from indexer.lock import IndexerLock
from indexer.rebuild import rebuild
from indexer.runner import chain_source, project_abis

out = Console()
err = Console(stderr=True, soft_wrap=True)


class _Bar:
    """A rich progress bar fed by the indexer's progress callback."""

    def __init__(self, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("block {task.completed:,.0f}/{task.total:,.0f}"),
            TextColumn("{task.fields[rate]:>9,.0f} events/s"),
            TextColumn("lag {task.fields[lag]:,} blocks"),
            TimeElapsedColumn(),
            console=err,
            disable=not enabled,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> _Bar:
        """Show the bar."""
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        """Hide the bar."""
        self._progress.__exit__(None, None, None)

    def update(self, p: IndexProgress) -> None:
        """Redraw from the indexer's progress."""
        done = max(0, p.checkpoint - p.start_block + 1)
        total = max(done, p.head - p.start_block + 1)
        label = "at head" if p.lag == 0 else "indexing"
        if self._task is None:
            self._task = self._progress.add_task(label, total=total, rate=0.0, lag=p.lag)
        self._progress.update(
            self._task,
            description=label,
            completed=done,
            total=total,
            rate=p.events_per_second,
            lag=p.lag,
        )


def _settings(backend: Backend | None, port: int | None, rpc_url: str | None) -> ChainSettings:
    """Chain settings from env/file, overridden by flags."""
    overrides = {"backend": backend, "port": port, "rpc_url": rpc_url}
    return ChainSettings(**{k: v for k, v in overrides.items() if v is not None})


def index(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep following the head.")
    ] = False,
    rebuild_: Annotated[
        bool,
        typer.Option(
            "--rebuild", help="Recompute derived tables from stored raw events (no node)."
        ),
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy URL (default: $DATABASE_URL, else tealedger.db in the data dir).",
        ),
    ] = None,
    confirmations: Annotated[
        int, typer.Option("--confirmations", min=0, help="Stay this many blocks behind the head.")
    ] = 0,
    window: Annotated[
        int, typer.Option("--window", min=1, help="Unfinalized blocks kept for reorg handling.")
    ] = 64,
    max_range: Annotated[
        int, typer.Option("--max-range", min=1, help="Most blocks per eth_getLogs request.")
    ] = 10_000,
    reader: Annotated[
        str, typer.Option("--reader", help="thread | inline | process (how logs are read ahead).")
    ] = "thread",
    batch_events: Annotated[
        int,
        typer.Option("--batch-events", min=1, help="Fewest events per transaction (reads joined)."),
    ] = IndexerConfig.batch_events,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between head checks.")] = 1.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    backend: Annotated[
        Backend | None, typer.Option("--backend", "-b", help="embedded | ganache | anvil | rpc")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Local node port.")] = None,
    rpc_url: Annotated[str | None, typer.Option("--rpc-url", help="JSON-RPC URL.")] = None,
) -> None:
    """Index the project contracts' events into the database (catch up and exit by default)."""
    settings = _settings(backend, port, rpc_url)
    url = database_url or default_database_url(settings)
    try:
        if rebuild_:
            _rebuild(settings, url)
        else:
            config = IndexerConfig(window=window, confirmations=confirmations, reader=reader,
                                   poll_interval=poll, batch_events=batch_events)  # fmt: skip
            _index(settings, url, config, max_range, follow, quiet)
    except (IndexerError, ChainError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt:
        err.print("stopped")


def _rebuild(settings: ChainSettings, url: str) -> None:
    """Rebuild derived tables from raw events under the lock."""
    engine = make_engine(url)
    abis = project_abis(compile_contracts(settings.project_root, settings.cache_dir))
    with IndexerLock(engine):
        stats = rebuild(engine, abis)
    out.print(
        f"rebuilt derived tables from {stats.events:,} raw events in {stats.seconds:.2f}s "
        f"({stats.events_per_second:,.0f} events/s)"
    )


def _index(
    settings: ChainSettings,
    url: str,
    config: IndexerConfig,
    max_range: int,
    follow: bool,
    quiet: bool,
) -> None:
    """Catch up (and follow) under the lock, with a progress bar."""
    from indexer.engine import Indexer

    engine = make_engine(url, writer=True)
    with IndexerLock(engine):
        client = ChainClient(settings)
        source = chain_source(client, max_range)
        with _Bar(not quiet) as bar:
            indexer = Indexer(engine, source, config, bar.update)
            indexer.prepare()
            progress = indexer.sync()
            if follow:
                indexer.follow(threading.Event())
    out.print(
        f"indexed up to block {progress.checkpoint:,}: {progress.events:,} events in "
        f"{progress.batches:,} batches ({progress.events_per_second:,.0f} events/s), "
        f"{progress.reorgs} reorgs, {progress.recovered_blocks} blocks re-read by the bloom guard"
    )


def register(app: typer.Typer) -> None:
    """Add the `index` command to the root CLI."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app.command("index")(index)
