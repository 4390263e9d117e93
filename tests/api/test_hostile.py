"""Hostile input (issue #18): no request takes the service down or answers a 500.

Each class of the black-box campaign has its regression here: a body nested 100,000 deep
against a real `tealedger serve`, oversized chunked bodies, malformed ids, foreign encodings
and binary in CSV uploads, huge and non-finite numbers, a dead node, random API keys against
the rate limits, booleans as numbers and invisible text, the shape of every 422, and messages
that leak internals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.core.limits import RateLimiter, ValidKeys
from api.core.models import OrganisationCreate, Role
from api.core.organisations import create_organisation
from api.core.security import hash_key
from api.core.settings import ApiSettings
from api.main import create_app
from chain.client import ChainClient
from chain.json_guard import json_depth
from chain.nodes import ProcessNode, free_port
from tests._fixtures import client_for, start_node
from tests.api.conftest import PASSWORD
from tests.api.test_cooperatives import resident_id
from traceability.contracts import deploy_traceability

DEEP = b"[" * 100_000 + b"]" * 100_000


# ------------------------------------------------------------------------- crash


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A real `tealedger serve` (no indexer, no node needed) on a free loopback port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEALEDGER_")}
    env.update(
        TEALEDGER_DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'svc.db'}",
        TEALEDGER_ORG_KEYSTORE_PASSWORD=PASSWORD,
        TEALEDGER_ENVIRONMENT="test",
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "tealedger.cli", "serve", "--port", str(port), "--no-indexer"]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"the service did not start: {(tmp_path / 'serve.log').read_text()}")
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        log.close()


def test_deeply_nested_json_does_not_kill_the_service(served: str) -> None:
    headers = {"Content-Type": "application/json"}
    try:
        response = httpx.post(f"{served}/admin/organisations", content=DEEP, headers=headers)
    except httpx.TransportError as exc:  # the old service died mid-request
        pytest.fail(f"the service dropped the connection: {exc!r}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_too_deep"
    assert httpx.get(f"{served}/healthz", timeout=5).status_code == 200


def test_a_chunked_body_over_the_limit_is_413(served: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 1_000_000

    headers = {"Content-Type": "application/json"}
    response = httpx.post(f"{served}/admin/organisations", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]
    assert httpx.get(f"{served}/healthz", timeout=5).status_code == 200


# ------------------------------------------------------------------------- 500s


@dataclass
class World:
    """The app on a real anvil with TeaTrace deployed, and a key per role."""

    app: FastAPI
    http: TestClient
    keys: dict[Role, dict[str, str]]


def _app_with_orgs(settings: ApiSettings, chain: ChainClient | None) -> World:
    """An app and one organisation per role (created directly, as the admin CLI does)."""
    app = create_app(settings, chain=chain)
    keys = {}
    with Session(app.state.engine) as session:
        for role in Role:
            _, key = create_organisation(
                session, OrganisationCreate(name=f"hostile {role.value}", role=role),
                settings.keystore_dir, PASSWORD,
            )  # fmt: skip
            keys[role] = {"X-API-Key": key.secret}
    return World(app, TestClient(app, raise_server_exceptions=False), keys)


def _settings(tmp: Path, **update: object) -> ApiSettings:
    """Test settings on a private SQLite database."""
    values: dict = dict(
        environment="test",
        database_url=f"sqlite:///{tmp / 'api.db'}",
        data_dir=tmp,
        org_keystore_password=PASSWORD,
        rate_limit_per_minute=1_000_000,
    )
    values.update(update)
    return ApiSettings(**values)


@pytest.fixture(scope="module")
def world(anvil_node: ProcessNode, tmp_path_factory: pytest.TempPathFactory) -> World:
    """TeaTrace on the session anvil and the app on it."""
    tmp = tmp_path_factory.mktemp("hostile")
    chain = client_for(anvil_node, tmp / "chain")
    chain.settings.data_dir.mkdir(parents=True, exist_ok=True)
    deploy_traceability(chain)
    return _app_with_orgs(_settings(tmp), chain)


# 66 characters, but 31 bytes once bytes.fromhex has dropped the spaces.
SPACED = "0x" + "ab" * 15 + "  " + "ab" * 16
ID_ROUTES = (
    ("GET", "/public/lots/{}/trace", None),
    ("GET", "/public/lots/{}/qr.svg", None),
    ("GET", "/cooperatives/farmers/{}", Role.COOPERATIVE),
    ("DELETE", "/cooperatives/farmers/{}/personal-data", Role.COOPERATIVE),
    ("GET", "/cooperatives/lots/{}", Role.COOPERATIVE),
    ("GET", "/farmers/{}", Role.FARMER),
    ("GET", "/lenders/farmers/{}/profile", Role.LENDER),
    ("POST", "/lenders/farmers/{}/decisions", Role.LENDER),
)


@pytest.mark.parametrize(("method", "path", "role"), ID_ROUTES)
def test_an_id_with_spaces_is_422_on_every_route(world: World, method, path, role) -> None:
    headers = world.keys[role] if role else {}
    response = world.http.request(method, path.format(SPACED), headers=headers)
    assert response.status_code == 422, response.text
    assert "64 hex digits" in str(response.json()["detail"])


def test_an_id_with_spaces_is_422_on_the_trace_page(world: World) -> None:
    response = world.http.get(f"/trace/{SPACED}")
    assert response.status_code == 422
    assert "64 hex digits" in response.text


def _csv(farmer: str = "0x" + "11" * 32) -> str:
    """A harvest file with Chinese grade names and receipt numbers."""
    return (
        "farmer,plot,grams,grade,picked_at,record_ref\n"
        f"{farmer},0x{'22' * 32},1200,一级,2024-04-01T08:00:00,收购单-甲-001\n"
        f"{farmer},0x{'22' * 32},800,特级,2024-04-02T08:00:00,收购单-乙-002\n"
    )


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-16", "utf-8-sig", "utf-8"])
def test_csv_uploads_in_chinese_encodings_are_read(world: World, encoding: str) -> None:
    content = _csv().encode(encoding)
    if encoding == "gbk":
        assert content != _csv().encode("utf-8") and b"\xd2\xbb\xbc\xb6" in content  # 一级
    files = {"file": ("收购.csv", content, "text/csv")}
    response = world.http.post(
        "/cooperatives/harvests/upload", files=files, headers=world.keys[Role.COOPERATIVE]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["invalid"] == 0 and len(body["outcomes"]) == 2, body


def test_a_binary_upload_is_refused_naming_the_encodings(world: World) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    response = world.http.post(
        "/cooperatives/harvests/upload",
        files={"file": ("harvest.csv", png, "text/csv")},
        headers=world.keys[Role.COOPERATIVE],
    )
    assert response.status_code == 422, response.text
    text = response.text
    assert "GBK" in text and "UTF-8" in text and "UTF-16" in text
    assert "/tmp" not in text and "upload.csv" not in text


@pytest.mark.parametrize(
    "path",
    ["/cooperatives/farmers", "/cooperatives/lots", "/lenders/farmers", "/merchants/payments"],
)
def test_a_huge_offset_is_422(world: World, path: str) -> None:
    role = {"c": Role.COOPERATIVE, "l": Role.LENDER, "m": Role.MERCHANT}[path[1]]
    response = world.http.get(f"{path}?offset=99999999999999999999", headers=world.keys[role])
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "offset"]


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_numbers_get_a_422_that_can_be_read(world: World, number: bytes) -> None:
    body = b'{"name": ' + number + b', "role": "cooperative"}'
    headers = {**world.keys[Role.ADMIN], "Content-Type": "application/json"}
    response = world.http.post("/admin/organisations", content=body, headers=headers)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail[0]["loc"] == ["body", "name"]


def test_a_huge_amount_in_a_body_is_422(world: World) -> None:
    body = {"budgets_fen": {"fertilizer": 10**40}}
    url = f"/lenders/decisions/{'0x' + 'ab' * 32}/offers"
    response = world.http.post(url, json=body, headers=world.keys[Role.LENDER])
    assert response.status_code == 422, response.text


def test_the_public_trace_is_503_while_the_node_is_down(tmp_path: Path) -> None:
    node = start_node("anvil", tmp_path / "anvil")
    try:
        chain = client_for(node, tmp_path / "chain")
        chain.settings.data_dir.mkdir(parents=True, exist_ok=True)
        deploy_traceability(chain)
        world = _app_with_orgs(_settings(tmp_path), chain)
        lot = "0x" + "ab" * 32
        assert world.http.get(f"/public/lots/{lot}/trace").status_code == 404
    finally:
        node.stop()
    for path in (f"/public/lots/{lot}/trace", f"/trace/{lot}"):
        response = world.http.get(path)
        assert response.status_code == 503, response.text
        assert "try again" in response.text
        assert "HTTPConnectionPool" not in response.text and "127.0.0.1" not in response.text


def test_the_public_trace_is_503_when_no_node_ever_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEALEDGER_BACKEND", "rpc")
    monkeypatch.setenv("TEALEDGER_RPC_URL", f"http://127.0.0.1:{free_port()}")
    world = _app_with_orgs(_settings(tmp_path), None)
    for path in (f"/public/lots/{'0x' + 'ab' * 32}/trace", f"/trace/{'0x' + 'ab' * 32}"):
        response = world.http.get(path)
        assert response.status_code == 503, response.text
        assert "urlopen" not in response.text and "127.0.0.1" not in response.text


# ------------------------------------------------------------------------- rate limits


def test_random_keys_share_their_address_bucket(tmp_path: Path) -> None:
    world = _app_with_orgs(_settings(tmp_path, rate_limit_per_minute=3), None)
    with world.http as http:
        codes = [
            http.get("/healthz", headers={"X-API-Key": f"tl_random_{n}"}).status_code
            for n in range(5)
        ]
        assert codes == [200, 200, 200, 429, 429], "invalid keys spend the address's tokens"
        assert http.get("/healthz").status_code == 429, "and so does no key at all"
        valid = http.get("/healthz", headers=world.keys[Role.COOPERATIVE])
        assert valid.status_code == 200, "a valid key has its own bucket"


def test_a_caller_out_of_tokens_is_refused_before_its_body_is_read(tmp_path: Path) -> None:
    world = _app_with_orgs(_settings(tmp_path, rate_limit_per_minute=1), None)
    with world.http as http:
        assert http.get("/healthz").status_code == 200
        big = http.post("/admin/organisations", content=b"[" * 3_000_000)
        assert big.status_code == 429, "the limit comes first, the body is never read"


def test_every_rate_limit_table_is_bounded() -> None:
    limiter = RateLimiter(per_minute=1, max_callers=100)
    for n in range(10_000):
        limiter.allow(f"ip:10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 100
    assert limiter.allow("ip:10.0.39.15") == (False, pytest.approx(60, abs=1)), "recent kept"


def test_the_valid_key_cache_is_bounded(tmp_path: Path) -> None:
    world = _app_with_orgs(_settings(tmp_path), None)
    keys = ValidKeys(max_keys=2)
    engine = world.app.state.engine
    for role in (Role.COOPERATIVE, Role.LENDER, Role.FARMER, Role.ADMIN):
        assert keys.valid(engine, hash_key(world.keys[role]["X-API-Key"]))
    for n in range(50):
        assert not keys.valid(engine, hash_key(f"tl_random_{n}"))
    assert len(keys) == 2


# ------------------------------------------------------------------------- types and text


@pytest.mark.parametrize(
    "name", ["   ", "\t\n", "Tea\x00Co", "Tea\u202eoC", "\u200b", "Tea\x1b[31mCo", " \ufeff "]
)
def test_names_must_be_visible_text(world: World, name: str) -> None:
    body = {"name": name, "role": "cooperative"}
    response = world.http.post("/admin/organisations", json=body, headers=world.keys[Role.ADMIN])
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "name"]


def test_names_are_trimmed(world: World) -> None:
    body = {"name": "  恩施茶叶合作社  ", "role": "farmer"}
    response = world.http.post("/admin/organisations", json=body, headers=world.keys[Role.ADMIN])
    assert response.status_code == 201, response.text
    assert response.json()["organisation"]["name"] == "恩施茶叶合作社"


@pytest.mark.parametrize("grams", [True, False, 1.5, "1200"])
def test_grams_must_be_an_integer(world: World, grams: object) -> None:
    body = [
        {
            "farmer": "0x" + "11" * 32,
            "plot": "0x" + "22" * 32,
            "grams": grams,
            "grade": 1,
            "picked_at": 1_711_958_400,
        }
    ]
    coop = world.keys[Role.COOPERATIVE]
    response = world.http.post("/cooperatives/harvests", json=body, headers=coop)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == "grams"


def test_a_boolean_in_a_harvest_file_is_not_a_gram(world: World) -> None:
    rows = [{"farmer": "0x" + "11" * 32, "plot": "0x" + "22" * 32, "grams": True, "grade": 1,
             "picked_at": 1_711_958_400}]  # fmt: skip
    files = {"file": ("harvest.json", json.dumps(rows).encode(), "application/json")}
    coop = world.keys[Role.COOPERATIVE]
    response = world.http.post("/cooperatives/harvests/upload", files=files, headers=coop)
    assert response.status_code == 200, response.text
    assert response.json()["invalid"] == 1 and response.json()["outcomes"] == []


@pytest.mark.parametrize("label", ["  ", "A\u202e1", "\x07"])
def test_plot_labels_must_be_visible_text(world: World, label: str) -> None:
    body = {"farmer_id": "0x" + "11" * 32, "land_reference": "LC-1", "area_centi_mu": 120,
            "label": label}  # fmt: skip
    coop = world.keys[Role.COOPERATIVE]
    response = world.http.post("/cooperatives/plots", json=body, headers=coop)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "label"]


# ------------------------------------------------------------------------- contract of the API


def test_the_422s_the_app_raises_are_lists(world: World) -> None:
    for response in (
        world.http.get(f"/public/lots/{SPACED}/trace"),
        world.http.post(
            "/cooperatives/harvests/upload",
            files={"file": ("harvest.csv", b"farmer,plot\n", "text/csv")},
            headers=world.keys[Role.COOPERATIVE],
        ),
    ):
        assert response.status_code == 422, response.text
        (problem,) = response.json()["detail"]
        assert set(problem) == {"loc", "msg", "type"} and problem["msg"]


def test_every_error_status_is_documented_on_every_operation(world: World) -> None:
    schema = world.http.get("/openapi.json").json()
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert len(operations) >= 35
    for operation in operations:
        documented = set(operation["responses"])
        assert {"400", "401", "403", "404", "409", "413", "422", "429", "503"} <= documented
        (media,) = operation["responses"]["422"]["content"].values()
        problem = media["schema"]
        assert problem["$ref"].endswith(("/ValidationProblem", "/HTTPValidationError"))


# ------------------------------------------------------------------------- messages

LEAKS = ("HTTPConnectionPool", "/tmp/", "set_int_max_str_digits", "urlopen", "127.0.0.1")


def _no_leak(response: httpx.Response) -> None:
    """The response shows none of the service's internals."""
    for leak in LEAKS:
        assert leak not in response.text, response.text


@pytest.mark.parametrize("field", ["picked_at", "grade", "grams"])
def test_numbers_with_thousands_of_digits_do_not_leak_python(world: World, field: str) -> None:
    record = {"farmer": "0x" + "11" * 32, "plot": "0x" + "22" * 32, "grams": 1200, "grade": 1,
              "picked_at": 1_711_958_400}  # fmt: skip
    record[field] = "9" * 5000
    csv_text = ",".join(record) + "\n" + ",".join(str(v) for v in record.values()) + "\n"
    coop = world.keys[Role.COOPERATIVE]
    files = {"file": ("harvest.csv", csv_text.encode(), "text/csv")}
    uploaded = world.http.post("/cooperatives/harvests/upload", files=files, headers=coop)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["invalid"] == 1
    _no_leak(uploaded)
    sent = world.http.post("/cooperatives/harvests", json=[record], headers=coop)
    assert sent.status_code == 422
    _no_leak(sent)


def test_a_file_with_wrong_columns_is_named_as_the_user_named_it(world: World) -> None:
    files = {"file": ("四月收购.csv", b"farmer,plot,name\n", "text/csv")}
    coop = world.keys[Role.COOPERATIVE]
    response = world.http.post("/cooperatives/harvests/upload", files=files, headers=coop)
    assert response.status_code == 422
    assert "四月收购.csv" in response.text and "missing columns" in response.text
    _no_leak(response)


def test_reads_do_not_say_nothing_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEALEDGER_BACKEND", "rpc")
    monkeypatch.setenv("TEALEDGER_RPC_URL", f"http://127.0.0.1:{free_port()}")
    world = _app_with_orgs(_settings(tmp_path), None)
    coop = world.keys[Role.COOPERATIVE]
    read = world.http.get(f"/cooperatives/farmers/{'0x' + 'ab' * 32}", headers=coop)
    assert read.status_code == 503
    assert "nothing was written" not in read.text and "try again" in read.text
    _no_leak(read)
    body = {"national_id": resident_id(), "name": "周九"}
    write = world.http.post("/cooperatives/farmers", json=body, headers=coop)
    assert write.status_code == 503
    assert "nothing was written" in write.text
    _no_leak(write)


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'["[[[[", "\\"[[[", {"k]": "}}"}]', 2),  # brackets in strings do not count
        (b'"[[[[', 0),  # an unterminated string hides the rest
        (b"[" * 100_000, 65),  # unclosed: still counted, and the scan stops at the bound
        (b"[{" * 40 + b"}]" * 40, 65),
    ],
)
def test_json_depth_is_measured_without_parsing(document: bytes, depth: int) -> None:
    assert json_depth(document) == depth
