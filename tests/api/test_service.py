"""Service-wide behaviour: health, metrics, body size and rate limits, production secrets."""

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlmodel import Session

from api.core.models import OrganisationCreate, Role
from api.core.organisations import create_organisation
from api.core.settings import ApiSettings
from api.main import create_app
from tests.api.conftest import DATABASES, PASSWORD, both_databases


@pytest.fixture(params=DATABASES)
def api_database_url(request, tmp_path, pg_databases) -> str:
    """Every test of this module on SQLite and on PostgreSQL."""
    return both_databases(request, tmp_path, pg_databases)


def test_healthz_without_a_follower(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["indexer"]["state"] == "off", "a test app (or serve --no-indexer) indexes nothing"


LOCAL = ("127.0.0.1", 50000)


def test_metrics_count_requests(app):
    with TestClient(app, client=LOCAL) as local:
        local.get("/healthz")
        text = local.get("/metrics").text
    assert 'tealedger_http_requests_total{method="GET",status="200"}' in text
    assert "tealedger_indexer_lag_blocks" in text


def test_metrics_are_for_this_host_only_without_a_key(app):
    with TestClient(app, client=("203.0.113.9", 50000)) as remote:
        refused = remote.get("/metrics")
    assert refused.status_code == 403 and "TEALEDGER_METRICS_KEY" in refused.text
    with TestClient(app, client=LOCAL) as local:
        proxied = local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403, "a proxy on this host forwards the world's requests"


def test_metrics_need_the_scrape_key_once_configured(api_settings):
    app = create_app(api_settings.model_copy(update={"metrics_key": SecretStr("s" * 32)}))
    with TestClient(app, client=LOCAL) as local:
        assert local.get("/metrics").status_code == 403, "loopback is not enough with a key set"
        wrong = local.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
    with TestClient(app, client=("203.0.113.9", 50000)) as remote:
        ok = remote.get("/metrics", headers={"Authorization": "Bearer " + "s" * 32})
    assert ok.status_code == 200 and "tealedger_http_requests_total" in ok.text


def test_oversized_body_is_413(api_settings, admin_headers):
    app = create_app(api_settings.model_copy(update={"max_body_bytes": 2048}))
    with TestClient(app) as http:
        body = {"name": "x" * 5000, "role": "lender"}
        response = http.post("/admin/organisations", json=body, headers=admin_headers)
    assert response.status_code == 413


def test_rate_limit_per_key(api_settings, tmp_path):
    app = create_app(api_settings.model_copy(update={"rate_limit_per_minute": 3}))
    k1, k2 = (_key(app, api_settings, f"org {n}") for n in (1, 2))
    with TestClient(app) as http:
        codes = [http.get("/healthz", headers={"X-API-Key": k1}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        other = http.get("/healthz", headers={"X-API-Key": k2})
        assert other.status_code == 200, "each valid key has its own bucket"
        limited = http.get("/healthz", headers={"X-API-Key": k1})
        assert int(limited.headers["Retry-After"]) >= 1


def _key(app, settings, name: str) -> str:
    """A valid key of a new organisation."""
    with Session(app.state.engine) as session:
        _, key = create_organisation(
            session, OrganisationCreate(name=name, role=Role.COOPERATIVE),
            settings.keystore_dir, PASSWORD,
        )  # fmt: skip
    return key.secret


def test_production_refuses_default_keystore_password(tmp_path):
    with pytest.raises(ValidationError, match="TEALEDGER_ORG_KEYSTORE_PASSWORD"):
        ApiSettings(environment="production", data_dir=tmp_path)
    ok = ApiSettings(
        environment="production",
        data_dir=tmp_path,
        org_keystore_password="x" * 20,
        pseudonym_secret="p" * 32,
    )
    assert ok.environment == "production"


def test_openapi_lists_admin_routes(client):
    spec = client.get("/openapi.json").json()
    assert "/admin/organisations" in spec["paths"]
    assert "X-API-Key" in str(spec["components"]["securitySchemes"])


def test_an_unknown_query_parameter_of_a_json_route_is_422(client, admin_headers):
    typo = client.get("/admin/organisations?limt=5", headers=admin_headers)
    assert typo.status_code == 422, typo.text
    (problem,) = typo.json()["detail"]
    assert problem["loc"] == ["query", "limt"] and "limit" in problem["msg"]
    assert client.get("/admin/organisations?limit=5", headers=admin_headers).status_code == 200
    assert client.get("/login?next=x").status_code == 200, "pages take what browsers add"
