"""`tealedger serve` and `tealedger admin ...`: run the service (with the indexer follower),
bootstrap organisations."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from sqlmodel import Session

from api.core.db import open_database
from api.core.demo_status import demo_loading
from api.core.models import OrganisationCreate, Role
from api.core.organisations import create_organisation
from api.core.settings import get_settings

if TYPE_CHECKING:
    from api.regulator.watch import RiskWatch

admin_app = typer.Typer(help="Organisations and API keys.", no_args_is_help=True)
out = Console(soft_wrap=True)


@admin_app.command("create-org")
def create_org(
    name: Annotated[str, typer.Option(help="Organisation name")],
    role: Annotated[Role, typer.Option(help="Its role")] = Role.ADMIN,
) -> None:
    """Create an organisation (e.g. the first admin) and print its API key once."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_database(settings.database_url)
    with Session(engine) as session:
        password = settings.org_keystore_password.get_secret_value()
        org, key = create_organisation(
            session, OrganisationCreate(name=name, role=role), settings.keystore_dir, password
        )
    out.print(f"organisation {org.id} ({org.role}) at {org.chain_address}")
    out.print(f"API key (shown once): {key.secret}")


def risk_watch(database_url: str, every_seconds: int, data_dir: Path) -> RiskWatch | None:
    """The risk monitor's scans after indexing (None when turned off with 0 seconds), held
    while a demo in `data_dir` is still loading its past season."""
    from api.regulator.watch import RiskWatch  # the rules load only where the service runs

    if every_seconds == 0:
        return None
    engine = open_database(database_url)
    return RiskWatch(database_url, engine, every_seconds, held=lambda: demo_loading(data_dir))


def serve(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    no_indexer: Annotated[
        bool,
        typer.Option(
            "--no-indexer",
            help="Serve only: another process indexes this database (extra API replicas).",
        ),
    ] = False,
    confirmations: Annotated[
        int, typer.Option(min=0, help="The follower stays this many blocks behind the head.")
    ] = 0,
    poll: Annotated[float, typer.Option(min=0.05, help="Seconds between head checks.")] = 1.0,
) -> None:
    """Run the HTTP service (uvicorn) and, unless --no-indexer, the indexer follower."""
    import uvicorn

    from api.core.follower import Follower
    from api.main import create_app
    from chain.config import ChainSettings
    from indexer.engine import IndexerConfig

    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # if no CLI did yet
    logging.getLogger("tealedger").setLevel(logging.INFO)  # the follower's progress and errors
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    follower = None
    if not no_indexer:
        config = IndexerConfig(confirmations=confirmations, poll_interval=poll, reader="inline")
        watch = risk_watch(settings.database_url, settings.risk_scan_seconds, settings.data_dir)
        follower = Follower(settings.database_url, ChainSettings(), config, after_progress=watch)
    app = create_app(settings, follower=follower)
    # uvicorn turns SIGTERM and SIGINT into a graceful shutdown: the app's lifespan then stops
    # the follower between two batches before the process exits.
    uvicorn.run(app, host=host, port=port, log_level="info")


def register(app: typer.Typer) -> None:
    """Add `serve` and `admin` to the root command."""
    app.command()(serve)
    app.add_typer(admin_app, name="admin")
