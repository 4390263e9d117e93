"""OpenAPI fuzz run: every operation, generated requests, every schemathesis check.

schemathesis builds requests from the service's own OpenAPI document and sends them to the
real app (a real SQLite database, the project's contracts on the session anvil, the chain
indexed) with a valid key of the role each path is for, so the authenticated code paths are
fuzzed, not only the 401s. A 5xx is a bug: bad input must be a 4xx with a message, every
status answered must be documented and every body must match its schema (the checks left out
are in EXCLUDED_CHECKS with their reason). The only
503 allowed is the documented one for a node that cannot be reached, which does not happen
here. Bounded and deterministic: a few derandomized examples per operation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from rich.console import Console
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.schemas import APIOperation
from sqlmodel import Session

from api.core.models import OrganisationCreate, Role
from api.core.organisations import create_organisation
from api.core.settings import ApiSettings
from api.main import create_app
from indexer.runner import index_once
from tealedger.demo.season import run_season
from tealedger.system import deploy_system
from tests._fixtures import client_for, demo_wallet, needs_node
from tests.api.conftest import PASSWORD
from tests.api.test_cooperatives import resident_id
from traceability.consent import ConsentService

pytestmark = needs_node()

EXAMPLES = 12
# Which organisations call each part of the API; /cooperatives serves four supply-chain roles.
COOP_ROLES = (Role.COOPERATIVE, Role.PROCESSOR, Role.DISTRIBUTOR, Role.INSPECTOR)
ROLE_OF_PREFIX = {
    "/admin": (Role.ADMIN,),
    "/cooperatives": COOP_ROLES,
    "/farmers": (Role.FARMER,),
    "/lenders": (Role.LENDER,),
    "/merchants": (Role.MERCHANT,),
    "/regulator": (Role.REGULATOR,),
    "/epcis/cooperative": (Role.COOPERATIVE,),
}


# Every schemathesis check runs but these, each for the reason given.
EXCLUDED_CHECKS: dict[object, str] = {
    positive_data_acceptance: (
        "schema-valid is not valid here: a resident id's check character, a harvest not in the "
        "future, a category that is registered, a decision that is approved and not expired "
        "are rules OpenAPI cannot express, so generated schema-valid requests are rightly 422 "
        "or 409 (the 4xx themselves are checked: documented, list-shaped, no 5xx)"
    ),
}


@dataclass
class FuzzWorld:
    """The app under test and a key per role; keys the fuzzer must not revoke."""

    app: FastAPI
    keys: dict[Role, str]
    key_ids: set[int]


@pytest.fixture(scope="module")
def fuzz_world(anvil_node, tmp_path_factory) -> FuzzWorld:
    """Every contract and a small season on anvil, indexed; an organisation per role."""
    tmp = tmp_path_factory.mktemp("fuzz")
    chain = client_for(anvil_node, tmp / "chain")
    chain.settings.data_dir.mkdir(parents=True, exist_ok=True)
    deploy_system(chain)
    region, _ = run_season(chain, farmers=2, seed=5, console=Console(quiet=True))
    settings_ = ApiSettings(
        environment="test",
        database_url=f"sqlite:///{tmp / 'api.core.db'}",
        data_dir=tmp,
        org_keystore_password=PASSWORD,
        pseudonym_secret="test-pseudonym-secret-0123456789abcdef",
        rate_limit_per_minute=1_000_000,
    )
    app = create_app(settings_, chain=chain)
    with Session(app.state.engine) as session:
        admin, key = create_organisation(
            session, OrganisationCreate(name="platform", role=Role.ADMIN),
            settings_.keystore_dir, PASSWORD,
        )  # fmt: skip
    keys = {Role.ADMIN: key.secret}
    key_ids = {key.record.id}
    ids: dict[Role, int] = {}
    addresses: dict[Role, str] = {}
    with TestClient(app) as http:
        admin_headers = {"X-API-Key": key.secret}
        for role in Role:
            if role is Role.ADMIN:
                continue
            body = {"name": f"fuzz {role.value}", "role": role.value}
            made = http.post("/admin/organisations", json=body, headers=admin_headers).json()
            ids[role] = made["organisation"]["id"]
            addresses[role] = made["organisation"]["chain_address"]
            keys[role] = made["api_key"]["key"]
            key_ids.add(made["api_key"]["id"])
            if role is not Role.FARMER:
                url = f"/admin/organisations/{ids[role]}/provision"
                assert http.post(url, headers=admin_headers).status_code == 200
        # The farmer organisation is a member's wallet and consents to the lender, so the
        # farmer's and the lender's reads get past their 404s and 403s.
        member = {"national_id": resident_id(), "name": "周九", "farmer_org_id": ids[Role.FARMER]}
        coop = {"X-API-Key": keys[Role.COOPERATIVE]}
        assert http.post("/cooperatives/farmers", json=member, headers=coop).status_code == 201
        consent = {"lender_org_id": ids[Role.LENDER]}
        farmer = {"X-API-Key": keys[Role.FARMER]}
        assert http.post("/farmers/me/consents", json=consent, headers=farmer).status_code == 201
    expires = int(time.time()) + 90 * 86_400
    # The demo farmer 0's own wallet consents: a season-backed profile to read.
    lender = addresses[Role.LENDER]
    wallet = demo_wallet(chain, region.farmer_ids[0])
    ConsentService(chain).grant(wallet, region.farmer_ids[0], lender, expires)
    index_once(chain, settings_.database_url)
    assert admin.id is not None
    return FuzzWorld(app, keys, key_ids)


def _key_for(path: str, pick: int, world: FuzzWorld) -> dict[str, str]:
    """The key of a role the path is for (`pick` chooses among several), none for public paths."""
    for prefix, roles in ROLE_OF_PREFIX.items():
        if path.startswith(prefix):
            return {"X-API-Key": world.keys[roles[pick % len(roles)]]}
    return {}


def _fuzz(operation: APIOperation, world: FuzzWorld, mode: GenerationMode) -> None:
    """Send EXAMPLES generated requests of one mode to one operation; raise on a 5xx."""

    @given(case=operation.as_strategy(mode), pick=st.integers(0, len(COOP_ROLES) - 1))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # report the first 5xx as found, unshrunk
        suppress_health_check=list(HealthCheck),
    )
    def send(case: schemathesis.Case, pick: int) -> None:
        # Revoking the fuzzer's own keys would turn the rest of the run into 401s.
        assume((case.path_parameters or {}).get("key_id") not in world.key_ids)
        headers = dict(case.headers or {})
        # A negative case without the key header is one that tests leaving it out: send it
        # without (401 expected); every other case gets a key of the path's role.
        if mode is not GenerationMode.NEGATIVE or "X-API-Key" in headers:
            headers.update(_key_for(case.path, pick, world))
        case.call_and_validate(headers=headers, excluded_checks=list(EXCLUDED_CHECKS))

    send()


def test_no_operation_answers_a_server_error(fuzz_world: FuzzWorld) -> None:
    # schemathesis' pytest plugin (`from_fixture(...).parametrize()`) does not run under
    # pytest 9, so the operations are walked here, each a bounded Hypothesis run of its own.
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_world.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 35, "every operation of the service is fuzzed"
    failures = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, fuzz_world, mode)
            except Unsatisfiable:  # nothing to get wrong (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # collected: one run reports all
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert failures == [], "\n\n".join(failures)
