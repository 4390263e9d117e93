"""API fixtures: an app on a real database, organisations with real keys.

The route modules (admin, service, cooperatives, farmers) run on SQLite and on PostgreSQL: their
modules ask for `api_database_url` from `both_databases`, and `world_database_url` is
parametrized; the browser, chain-heavy and process tests stay on SQLite.
"""

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.core.models import OrganisationCreate, Role
from api.core.organisations import create_organisation
from api.core.settings import ApiSettings
from api.main import create_app
from tests._fixtures.pg import PgDatabases

PASSWORD = "test-keystore-password"
DATABASES = ("sqlite", "postgresql")


def database_for(kind: str, directory: Path, pg: PgDatabases | None) -> str:
    """A fresh empty database of `kind` (SQLite in `directory`, or a new PostgreSQL one)."""
    if kind == "sqlite":
        return f"sqlite:///{directory / 'api.core.db'}"
    if pg is None:
        pytest.skip("no PostgreSQL server answers (set CI=1 to make this a failure)")
    return pg.new()


def both_databases(request: pytest.FixtureRequest, tmp_path: Path, pg_databases) -> str:
    """Body of a module's `api_database_url` fixture parametrized over DATABASES."""
    return database_for(request.param, tmp_path, pg_databases)


@pytest.fixture
def api_database_url(tmp_path: Path) -> str:
    """The app's database: SQLite unless a module asks for both (see both_databases)."""
    return f"sqlite:///{tmp_path / 'api.core.db'}"


@pytest.fixture(scope="module", params=DATABASES)
def world_database_url(request, tmp_path_factory, pg_databases) -> str:
    """The database of a module's shared world (test_cooperatives, test_farmers), per kind."""
    return database_for(request.param, tmp_path_factory.mktemp("world-db"), pg_databases)


@pytest.fixture
def api_settings(tmp_path, api_database_url) -> ApiSettings:
    """Settings pointing at a private database and keystore folder."""
    return ApiSettings(
        environment="test",
        database_url=api_database_url,
        data_dir=tmp_path,
        org_keystore_password=PASSWORD,
        rate_limit_per_minute=10_000,
    )


@pytest.fixture
def app(api_settings):
    """The application."""
    return create_app(api_settings)


@pytest.fixture
def client(app):
    """An HTTP client on the app."""
    with TestClient(app) as http:
        yield http


@pytest.fixture
def make_org(app, api_settings) -> Callable[[Role, str], tuple[int, dict[str, str]]]:
    """Create an organisation directly; returns (id, auth headers)."""

    def make(role: Role, name: str = "org") -> tuple[int, dict[str, str]]:
        with Session(app.state.engine) as session:
            org, key = create_organisation(
                session,
                OrganisationCreate(name=name, role=role),
                api_settings.keystore_dir,
                PASSWORD,
            )
            return org.id, {"X-API-Key": key.secret}

    return make


@pytest.fixture
def admin_headers(make_org) -> dict[str, str]:
    """Headers of an admin organisation."""
    return make_org(Role.ADMIN, "platform")[1]
