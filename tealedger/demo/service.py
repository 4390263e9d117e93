"""The demo's last stage: index the chain, give each audience a login, run the service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import Session, select

from api.cooperatives.roll import MAX_MEMBER_BATCH, MemberIn, MemberRoll, register_members
from api.cooperatives.schemas import PlotFields
from api.core.db import open_database
from api.core.indexed import indexed_block
from api.core.models import Farmer, Organisation, OrganisationCreate, Role
from api.core.organisations import create_organisation
from api.core.security import mint_key
from api.core.settings import ApiSettings
from chain.client import ChainClient
from chain.config import ChainSettings
from chain.errors import ChainError, NodeError
from chain.nodes import port_is_free
from indexer.db import make_engine
from indexer.engine import Progress
from indexer.errors import IndexerLockedError
from indexer.lock import IndexerLock
from indexer.runner import index_once
from tealedger.demo.season import COOPERATIVE_ACCOUNTS, Region
from traceability.contracts import farmer_records

# Which development account acts for each audience (the season was recorded by these).
DEMO_ORGS = (
    (Role.ADMIN, "Platform operator 平台", 0),
    (Role.COOPERATIVE, "Enshi tea cooperative 恩施茶叶合作社", 1),
    (Role.PROCESSOR, "Yulu tea factory 玉露茶厂", 2),
    (Role.DISTRIBUTOR, "Hubei tea distributor 湖北茶叶经销商", 3),
    (Role.INSPECTOR, "Quality inspector 质检站", 4),
    (Role.LENDER, "Rural commercial bank 农商银行", 5),
    (Role.MERCHANT, "Fertilizer supplier 农资店", 6),
    (Role.COOPERATIVE, "Xuan'en tea cooperative 宣恩茶叶合作社", 7),
    (Role.COOPERATIVE, "Hefeng tea cooperative 鹤峰茶叶合作社", 8),
    # The regulator sends nothing; its dev account only gives its organisation an address.
    (Role.REGULATOR, "Enshi financial regulator 恩施金融监管分局", 9),
)


@dataclass(frozen=True)
class Login:
    """An audience's organisation and a fresh API key for it."""

    role: str
    name: str
    address: str
    api_key: str


FOLLOWER_WAIT_SECONDS = 900.0
"""How long the demo waits for the service's follower to index up to a block."""
FOLLOWER_POLL_SECONDS = 0.2


class FollowerLagError(ChainError):
    """The service's follower did not reach the block the demo needs indexed."""


def index_chain(
    client: ChainClient, database_url: str, timeout: float = FOLLOWER_WAIT_SECONDS
) -> Progress:
    """Bring the database up to the chain head: index it under the indexer lock (one writer),
    or, while the service's follower holds the lock, wait until it has indexed the head."""
    engine = make_engine(database_url, writer=True)
    try:
        try:
            with IndexerLock(engine):
                return index_once(client, engine)
        except IndexerLockedError:
            return _wait_for_follower(client, engine, timeout)
    finally:
        engine.dispose()


def _wait_for_follower(client: ChainClient, engine: Engine, timeout: float) -> Progress:
    """Poll the indexer's checkpoint until it reaches the head as of now."""
    head = client.w3.eth.block_number
    first = checkpoint = _checkpoint(engine)
    deadline = time.monotonic() + timeout
    while checkpoint < head:
        if time.monotonic() > deadline:
            raise FollowerLagError(
                f"the service's indexer is at block {checkpoint:,}, not yet {head:,}, after "
                f"{timeout:.0f} s: see the service's log (data dir's service.log) and /healthz"
            )
        time.sleep(FOLLOWER_POLL_SECONDS)
        checkpoint = _checkpoint(engine)
    return Progress(start_block=first, checkpoint=checkpoint, head=head)


def _checkpoint(engine: Engine) -> int:
    """The last block the indexer has written to this database (0 before it starts)."""
    try:
        with engine.connect() as conn:
            return indexed_block(conn)
    except (OperationalError, ProgrammingError):  # the follower has not created its tables
        return 0


def demo_organisations(client: ChainClient, settings: ApiSettings) -> dict[int, Organisation]:
    """An organisation per audience on the dev account that acted for it (made once), by
    account index."""
    return {
        index: ensure_organisation(settings, role, name, client.accounts[index])
        for role, name, index in DEMO_ORGS
    }


def ensure_organisation(
    settings: ApiSettings, role: Role, name: str, account: LocalAccount
) -> Organisation:
    """The organisation on `account`'s address, created with that key if there is none."""
    engine = open_database(settings.database_url)
    with Session(engine, expire_on_commit=False) as session:
        org = session.exec(
            select(Organisation).where(Organisation.chain_address == account.address)
        ).first()
        if org is None:
            password = settings.org_keystore_password.get_secret_value()
            body = OrganisationCreate(name=name, role=role)
            org, _ = create_organisation(
                session, body, settings.keystore_dir, password, bytes(account.key)
            )
        return org


def demo_logins(client: ChainClient, settings: ApiSettings) -> list[Login]:
    """Ensure an organisation per audience (on the dev account that acted for it); new keys."""
    orgs = demo_organisations(client, settings)
    logins = []
    with Session(open_database(settings.database_url)) as session:
        for role, name, index in DEMO_ORGS:
            org = orgs[index]
            assert org.id is not None
            new = mint_key(org.id)
            session.add(new.record)
            session.commit()
            logins.append(Login(role.value, name, org.chain_address, new.secret))
    return logins


def adopt_members(client: ChainClient, settings: ApiSettings, region: Region) -> int:
    """The season's farmers and plots into their cooperatives' member registers, through the
    cooperatives' own service, as member rolls (api.cooperatives.roll, the function of `POST
    /cooperatives/farmers/batch`): it finds each already on chain under the pseudonym it computes
    itself and adopts it, sending nothing. Returns how many were new.

    The season registered on chain in batches, under the service's salts (tealedger.demo.season
    .demo_salts); this keeps the names and plots a cooperative's pages show. Wallets are read
    from TeaTrace, so run this after the lending stage has linked each member's own wallet.
    """
    orgs = demo_organisations(client, settings)
    coops = [orgs[i] for i in COOPERATIVE_ACCOUNTS]
    season = region.season
    rolls: dict[int, list[MemberIn]] = {}
    with Session(open_database(settings.database_url)) as session:
        known = set(session.exec(select(Farmer.farmer_id)).all())
        todo = [i for i, f in enumerate(region.farmer_ids) if "0x" + f.hex() not in known]
        records = farmer_records(client, [region.farmer_ids[i] for i in todo])
        for i, record in zip(todo, records, strict=True):
            farmer = season.farmers[i]
            rolls.setdefault(farmer.cooperative % len(coops), []).append(MemberIn(
                national_id=farmer.national_id, name=farmer.name, wallet=record.wallet,
                plots=[
                    PlotFields(land_reference=plot.reference, area_centi_mu=plot.area_centi_mu,
                               variety=plot.variety, label=f"茶园 {k + 1} plot")
                    for k, plot in enumerate(farmer.plots)
                ],
            ))  # fmt: skip
        return sum(
            _register_roll(session, client, settings, coops[c], roll) for c, roll in rolls.items()
        )


def _register_roll(
    session: Session,
    client: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    members: list[MemberIn],
) -> int:
    """A cooperative's members entered as member rolls (api.cooperatives.roll); how many."""
    added = 0
    for start in range(0, len(members), MAX_MEMBER_BATCH):
        roll = MemberRoll(members=members[start : start + MAX_MEMBER_BATCH])
        out = register_members(session, client, settings, coop, roll)
        if out.refused:
            raise ChainError(f"the cooperative's service refused a member: {out.refused[0].reason}")
        added += len(out.registered)
    return added


def service_env(settings: ApiSettings, chain: ChainSettings) -> dict[str, str]:
    """The environment that makes a child `tealedger serve` see this database and chain."""
    env = os.environ.copy()
    env.update(
        TEALEDGER_DATA_DIR=str(settings.data_dir),
        DATABASE_URL=settings.database_url,
        TEALEDGER_ENVIRONMENT=settings.environment,
        TEALEDGER_BACKEND=chain.backend,
        TEALEDGER_PORT=str(chain.port),
    )
    if chain.rpc_url:
        env["TEALEDGER_RPC_URL"] = chain.rpc_url
    return env


def start_service(settings: ApiSettings, chain: ChainSettings, port: int = 8000) -> str:
    """Run `tealedger serve` in the background unless it already answers; returns its URL."""
    url = f"http://127.0.0.1:{port}"
    pidfile = settings.data_dir / "service.json"
    if _answers(url):
        return url
    if not port_is_free("127.0.0.1", port):
        raise NodeError(f"port {port} is in use by something that is not tealedger's service")
    log = (settings.data_dir / "service.log").open("ab")
    cmd = [sys.executable, "-m", "tealedger.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, env=service_env(settings, chain),
    )  # fmt: skip
    pidfile.write_text(json.dumps({"pid": proc.pid, "url": url}))
    for _ in range(200):
        if _answers(url):
            return url
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise NodeError(f"the service did not start; see {settings.data_dir / 'service.log'}")


def _answers(url: str) -> bool:
    """True if a tealedger service answers /healthz at `url`."""
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def stop_service(settings: ApiSettings) -> bool:
    """Stop a service started by `start_service`; True if one was running."""
    pidfile = settings.data_dir / "service.json"
    try:
        pid = int(json.loads(pidfile.read_text())["pid"])
    except (FileNotFoundError, KeyError, ValueError):
        return False
    pidfile.unlink(missing_ok=True)
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(100):
        try:
            os.kill(pid, 0)
            os.waitpid(pid, os.WNOHANG)
        except (ProcessLookupError, ChildProcessError):
            break
        time.sleep(0.05)
    return True
