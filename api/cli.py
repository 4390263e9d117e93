"""`tealedger serve` and `tealedger admin ...`: run the service, bootstrap organisations."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from sqlmodel import Session

from api.db import open_database
from api.models import OrganisationCreate, Role
from api.organisations import create_organisation
from api.settings import get_settings

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


def serve(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
) -> None:
    """Run the HTTP service (uvicorn)."""
    import uvicorn

    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, log_level="info")


def register(app: typer.Typer) -> None:
    """Add `serve` and `admin` to the root command."""
    app.command()(serve)
    app.add_typer(admin_app, name="admin")
