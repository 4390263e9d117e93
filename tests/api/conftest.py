"""API fixtures: an app on a real SQLite database, organisations with real keys."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.main import create_app
from api.models import OrganisationCreate, Role
from api.organisations import create_organisation
from api.settings import ApiSettings

PASSWORD = "test-keystore-password"


@pytest.fixture
def api_settings(tmp_path) -> ApiSettings:
    """Settings pointing at a private database and keystore folder."""
    return ApiSettings(
        environment="test",
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
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
