"""Soak: a mixed load on a running `tealedger serve` for minutes, the node restarted midway.

A throw-away anvil (its own `--state` file, loopback, free port) gets every contract
(`tealedger.system.deploy_system`); a platform admin comes from `tealedger admin create-org`
and makes, through the admin API, a cooperative, a lender, a merchant, a processor and a farmer
organisation; the cooperative registers members and plots, one member (the farmer
organisation's wallet) grants the lender consent. Then `tealedger serve` (with its indexer
follower) on a free port takes BENCH_SOAK_WORKERS closed-loop clients for BENCH_SOAK_SECONDS:

- writes: the cooperative's JSON harvest batches, every record with its own `record_ref`, so
  each maps to one lot (`lot_id(cooperative, data_hash)`) that the client computes itself;
- reads of every audience: lots list and detail, members, the public trace and QR code, the
  lender's consenting farmers and a profile, the farmer's own record and consents, the
  merchant's payments, the admin's organisations, /healthz;
- bad requests, each of which must be refused with a 4xx: malformed and 100-level nested JSON,
  invalid and missing keys, another audience's route, malformed and unknown ids, a 20-digit
  offset, an empty processing body.

Halfway the node is stopped (SIGTERM: anvil writes its state), left down BENCH_SOAK_OUTAGE
seconds and started again on the same port from the same state file; the block it had is
checked to be there with the same hash. Only 503 is acceptable while the node is away (and for
RESTART_GRACE_S after it answers again); writes refused then must have recorded nothing.

Afterwards the follower catches up and the run checks that every acknowledged record is on
chain exactly once (HarvestRecorded logs) and in the indexed `harvest` table, that no refused
record is on either, and that the service never answered 5xx otherwise. `run()` raises if not,
so `make bench` fails loudly.

Environment: BENCH_SOAK_SECONDS (default 180), BENCH_SOAK_WORKERS (default 4),
BENCH_SOAK_OUTAGE (seconds down, default 5).
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_utils import keccak
from sqlalchemy import select

from api.core.settings import ApiSettings
from chain.client import ChainClient
from chain.config import DEV_MNEMONIC, PROJECT_ROOT, ChainSettings
from chain.nodes import AnvilNode, free_port, rpc_call
from indexer.db import make_engine
from indexer.models import Harvest
from tealedger.demo.service import service_env
from tealedger.system import deploy_system
from traceability import contracts
from traceability.ids import lot_id
from traceability.models import HarvestRecord

START_TIMEOUT_S = 120.0
CATCH_UP_TIMEOUT_S = 180.0
RESTART_GRACE_S = 5.0  # after the node answers again, the service's next call finds it
REQUEST_TIMEOUT_S = 60.0
MEMBERS = 4
BATCH = 5  # records per harvest write
HARVEST_RECORDED = (
    "0x"
    + keccak(text="HarvestRecorded(bytes32,bytes32,bytes32,uint256,uint256,uint256,bytes32)").hex()
)
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
GOOD, BAD, WRITE = "good", "bad", "write"


def _env_int(name: str, default: int) -> int:
    """An integer from the environment."""
    return int(os.environ.get(name, default))


def resident_id(n: int) -> str:
    """A valid 18-character PRC resident id (correct check character)."""
    body = f"42280119850312{n % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


# ------------------------------------------------------------------------------- processes


class SoakNode:
    """anvil with a state file, stopped and started again on the same port."""

    def __init__(self, data_dir: Path) -> None:
        self.node = AnvilNode(data_dir, PROJECT_ROOT, free_port(), DEV_MNEMONIC)

    def block(self) -> tuple[int, str]:
        """(number, hash) of the latest block."""
        latest = rpc_call(self.node.url, "eth_getBlockByNumber", ["latest", False])
        return int(latest["number"], 16), latest["hash"]

    def restart(self, down_s: float) -> tuple[float, float]:
        """Stop (anvil writes its state), wait, start again; (went down, answers again)."""
        number, block_hash = self.block()
        down = time.monotonic()
        self.node.stop()
        time.sleep(down_s)
        self.node.start()
        up = time.monotonic()
        kept = rpc_call(self.node.url, "eth_getBlockByNumber", [hex(number), False])
        if kept is None or kept["hash"] != block_hash:
            raise RuntimeError(f"block {number} did not survive the node's restart")
        return down, up


@contextmanager
def served(env: dict[str, str], log: Path) -> Iterator[str]:
    """`tealedger serve` with its follower on a free port until the block ends; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "tealedger.cli", "serve", "--port", str(port), "--poll", "0.2"]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        _until(lambda: _following(url, proc), "tealedger serve to follow the chain")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _health(url: str) -> dict[str, Any] | None:
    """/healthz's body, or None if the service does not answer."""
    try:
        return httpx.get(f"{url}/healthz", timeout=2).json()
    except (httpx.TransportError, ValueError):
        return None


def _following(url: str, proc: subprocess.Popen[bytes]) -> bool:
    """True once the follower follows; raises if the service exited."""
    if proc.poll() is not None:
        raise RuntimeError(f"tealedger serve exited with code {proc.returncode}")
    health = _health(url)
    return bool(health and health["indexer"]["state"] == "following")


def _until(check: Callable[[], Any], what: str, timeout: float = START_TIMEOUT_S) -> Any:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def _admin_key(env: dict[str, str]) -> str:
    """The platform admin's API key, made by the real `tealedger admin create-org`."""
    cmd = [sys.executable, "-m", "tealedger.cli", "admin", "create-org"]
    cmd += ["--name", "Soak platform", "--role", "admin"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.split("API key (shown once): ")[1].split()[0]


# ------------------------------------------------------------------------------- the world


@dataclass
class World:
    """Who the load acts as, and what they own."""

    admin: str = ""
    coop: str = ""
    coop_address: str = ""
    lender: str = ""
    merchant: str = ""
    processor: str = ""
    farmer: str = ""
    consenting: str = ""  # a farmer id whose profile the lender may read
    seed_lot: str = ""  # recorded during setup: public reads have a lot from the start
    plots: list[tuple[str, str]] = field(default_factory=list)  # (farmer id, plot id)


def _post(http: httpx.Client, path: str, key: str, body: Any = None) -> dict[str, Any]:
    """A setup call that must succeed."""
    reply = http.post(path, json=body, headers={"X-API-Key": key})
    if reply.status_code not in (200, 201):
        raise RuntimeError(f"setup: POST {path} -> {reply.status_code} {reply.text}")
    return reply.json()


def _org(http: httpx.Client, admin: str, role: str, provision: bool = True) -> dict[str, Any]:
    """A new organisation (its role granted on chain if `provision`) and its key."""
    made = _post(http, "/admin/organisations", admin, {"name": f"Soak {role}", "role": role})
    if provision:
        _post(http, f"/admin/organisations/{made['organisation']['id']}/provision", admin)
    return made


def build_world(base: str, admin: str) -> World:
    """Organisations of every audience, members with plots, a first lot, one consent."""
    world = World(admin=admin)
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S) as http:
        coop = _org(http, admin, "cooperative")
        world.coop = coop["api_key"]["key"]
        world.coop_address = coop["organisation"]["chain_address"]
        lender = _org(http, admin, "lender")
        world.lender = lender["api_key"]["key"]
        world.merchant = _org(http, admin, "merchant")["api_key"]["key"]
        world.processor = _org(http, admin, "processor")["api_key"]["key"]
        farmer = _org(http, admin, "farmer", provision=False)
        world.farmer = farmer["api_key"]["key"]
        _members(http, world, farmer["organisation"]["id"])
        world.seed_lot = _seed_lot(http, world)
        _consent(http, world, lender["organisation"]["id"])
    return world


def _members(http: httpx.Client, world: World, farmer_org_id: int) -> None:
    """MEMBERS members with a plot each; the first one's wallet is the farmer organisation's."""
    for n in range(MEMBERS):
        member: dict[str, Any] = {"national_id": resident_id(n), "name": f"Soak member {n}"}
        if n == 0:
            member["farmer_org_id"] = farmer_org_id
        farmer_id = _post(http, "/cooperatives/farmers", world.coop, member)["farmer_id"]
        plot = {"farmer_id": farmer_id, "land_reference": f"soak-land-{n}",
                "area_centi_mu": 10_000_000}  # fmt: skip
        plot_id = _post(http, "/cooperatives/plots", world.coop, plot)["plot_id"]
        world.plots.append((farmer_id, plot_id))
    world.consenting = world.plots[0][0]


def _seed_lot(http: httpx.Client, world: World) -> str:
    """A lot recorded before the load, so public reads have one from the start."""
    farmer_id, plot_id = world.plots[0]
    seed = {"farmer": farmer_id, "plot": plot_id, "grams": 1000, "grade": 1,
            "picked_at": int(time.time()) - 7200, "record_ref": "soak-seed"}  # fmt: skip
    return str(_post(http, "/cooperatives/harvests", world.coop, [seed])["outcomes"][0]["lot"])


def _consent(http: httpx.Client, world: World, lender_org_id: int) -> None:
    """The first member grants the lender consent; wait until it is indexed."""
    _post(http, "/farmers/me/consents", world.farmer, {"lender_org_id": lender_org_id})
    headers = {"X-API-Key": world.lender}
    _until(
        lambda: http.get("/lenders/farmers", headers=headers).json()["total"],
        "the consent to be indexed",
    )


# ------------------------------------------------------------------------------- the load


@dataclass(frozen=True)
class Sample:
    """One request: what it was, what came back, when."""

    action: str
    kind: str  # GOOD, BAD or WRITE
    status: int  # 0: no HTTP answer at all
    began: float
    ended: float
    error: str = ""  # why there was no HTTP answer

    @property
    def ms(self) -> float:
        """Latency in milliseconds."""
        return (self.ended - self.began) * 1000


@dataclass(frozen=True)
class Write:
    """A harvest batch: the lots its records map to, and what the service said of each."""

    lots: tuple[bytes, ...]
    status: int
    recorded: tuple[bytes, ...] = ()
    other: tuple[str, ...] = ()  # outcomes other than `recorded` (none expected)
    # Sent, then the node went away before the receipt: the service says the outcome is
    # unknown (503 with `transactions`); such lots may be on chain, at most once.
    in_doubt: bool = False


@dataclass
class Tally:
    """Everything the workers saw (appends are atomic under the GIL; the lock guards lots)."""

    samples: list[Sample] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    lots: list[str] = field(default_factory=list)  # acknowledged lots, for trace reads
    lock: threading.Lock = field(default_factory=threading.Lock)

    def some_lot(self, rng: random.Random) -> str | None:
        """An acknowledged lot, if any."""
        with self.lock:
            return rng.choice(self.lots) if self.lots else None


class Worker:
    """One closed-loop client: picks an action, sends it, records the answer."""

    def __init__(self, n: int, base: str, world: World, tally: Tally, pause: float) -> None:
        self.n, self.world, self.tally, self.pause = n, world, tally, pause
        self.rng = random.Random(n)
        self.http = httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S)
        self.seq = 0
        self.error: BaseException | None = None
        self.known_lot: str | None = None
        self.actions = self._actions()
        self.weights = [a[0] for a in self.actions]

    def _actions(self) -> list[tuple[int, str, str, Callable[[], httpx.Response]]]:
        """(weight, name, kind, send) of every request the worker may make."""
        w, get, raw = self.world, self.get, self.raw
        harvests, nested = "/cooperatives/harvests", b"[" * 100 + b"]" * 100
        return [
            (20, "harvest write", WRITE, self.write),
            (8, "coop lots", GOOD, lambda: get("/cooperatives/lots?limit=20", w.coop)),
            (6, "coop lot detail", GOOD, self.lot_detail),
            (3, "coop members", GOOD, lambda: get("/cooperatives/farmers", w.coop)),
            (6, "public trace", GOOD, lambda: self.lot_read("/public/lots/{}/trace")),
            (3, "public QR", GOOD, lambda: self.lot_read("/public/lots/{}/qr.svg")),
            (4, "lender farmers", GOOD, lambda: get("/lenders/farmers", w.lender)),
            (5, "lender profile", GOOD,
             lambda: get(f"/lenders/farmers/{w.consenting}/profile", w.lender)),
            (3, "farmer self", GOOD, lambda: get("/farmers/me", w.farmer)),
            (2, "farmer consents", GOOD, lambda: get("/farmers/me/consents", w.farmer)),
            (3, "merchant payments", GOOD, lambda: get("/merchants/payments", w.merchant)),
            (3, "admin organisations", GOOD, lambda: get("/admin/organisations", w.admin)),
            (3, "healthz", GOOD, lambda: get("/healthz", None)),
            (3, "bad: malformed JSON", BAD, lambda: raw(harvests, b'[{"farmer": ', w.coop)),
            (3, "bad: JSON nested 100 deep", BAD, lambda: raw(harvests, nested, w.coop)),
            (3, "bad: invalid key", BAD,
             lambda: get("/cooperatives/lots", "tl_" + secrets.token_hex(16))),
            (2, "bad: no key", BAD, lambda: get("/admin/organisations", None)),
            (3, "bad: another audience's route", BAD, lambda: get("/cooperatives/lots", w.lender)),
            (3, "bad: malformed lot id", BAD, lambda: get("/public/lots/0x12 34/trace", None)),
            (3, "bad: unknown lot", BAD,
             lambda: get(f"/public/lots/0x{secrets.token_hex(32)}/trace", None)),
            (2, "bad: unknown lot of the cooperative", BAD,
             lambda: get(f"/cooperatives/lots/0x{secrets.token_hex(32)}", w.coop)),
            (2, "bad: 20-digit offset", BAD,
             lambda: get("/cooperatives/lots?offset=99999999999999999999", w.coop)),
            (2, "bad: empty processing body", BAD,
             lambda: raw("/cooperatives/processing", b"{}", w.processor)),
        ]  # fmt: skip

    def get(self, path: str, key: str | None) -> httpx.Response:
        """GET as `key` (anonymous if None)."""
        return self.http.get(path, headers={"X-API-Key": key} if key else {})

    def raw(self, path: str, body: bytes, key: str) -> httpx.Response:
        """POST raw bytes as JSON, as `key`."""
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        return self.http.post(path, content=body, headers=headers)

    def lot_read(self, template: str) -> httpx.Response:
        """A public read of an acknowledged lot (the seed lot until there is one)."""
        lot = self.tally.some_lot(self.rng) or self.world.seed_lot
        return self.get(template.format(lot), None)

    def lot_detail(self) -> httpx.Response:
        """Detail of a lot seen in the cooperative's indexed list."""
        if self.known_lot is None:
            listed = self.get("/cooperatives/lots?limit=1", self.world.coop)
            if listed.status_code == 200 and listed.json()["items"]:
                self.known_lot = listed.json()["items"][0]["lot"]
            else:
                return listed
        return self.get(f"/cooperatives/lots/{self.known_lot}", self.world.coop)

    def write(self) -> httpx.Response:
        """A harvest batch of BATCH records with unique receipt numbers."""
        now = int(time.time())
        records = []
        for i in range(BATCH):
            farmer, plot = self.rng.choice(self.world.plots)
            self.seq += 1
            records.append({
                "farmer": farmer, "plot": plot, "grams": self.rng.randint(100, 50_000),
                "grade": self.rng.randint(1, 5), "picked_at": now - 3600 - i,
                "record_ref": f"soak-{self.n}-{self.seq}",
            })  # fmt: skip
        lots = tuple(self.lot_of(r) for r in records)
        reply: httpx.Response | None = None
        try:
            reply = self.http.post(
                "/cooperatives/harvests", json=records, headers={"X-API-Key": self.world.coop}
            )
            return reply
        finally:
            self.tally.writes.append(self.written(lots, reply))

    def lot_of(self, record: dict[str, Any]) -> bytes:
        """The lot TeaTrace assigns to a record (its id does not depend on the answer)."""
        fields = {
            k: (bytes.fromhex(v[2:]) if k in ("farmer", "plot") else v) for k, v in record.items()
        }
        return lot_id(self.world.coop_address, HarvestRecord(**fields).key)

    def written(self, lots: tuple[bytes, ...], reply: httpx.Response | None) -> Write:
        """What the service said of a harvest batch."""
        if reply is None or reply.status_code != 200:
            doubt = reply is not None and reply.status_code == 503 and _in_doubt(reply)
            return Write(lots, reply.status_code if reply is not None else 0, in_doubt=doubt)
        outcomes = reply.json()["outcomes"]
        recorded = tuple(
            bytes.fromhex(o["lot"][2:]) for o in outcomes if o["outcome"] == "recorded"
        )
        other = tuple(
            f"{o['outcome']}: {o['reason']}" for o in outcomes if o["outcome"] != "recorded"
        )
        with self.tally.lock:
            self.tally.lots.extend("0x" + lot.hex() for lot in recorded)
        return Write(lots, 200, recorded, other)

    def run(self, until: float) -> None:
        """Send requests until `until` (monotonic)."""
        try:
            while time.monotonic() < until:
                _, action, kind, send = self.rng.choices(self.actions, self.weights)[0]
                began = time.monotonic()
                error = ""
                try:
                    status = send().status_code
                except httpx.TransportError as exc:
                    status, error = 0, f"{type(exc).__name__}: {exc}"
                sample = Sample(action, kind, status, began, time.monotonic(), error)
                self.tally.samples.append(sample)
                if self.pause:
                    time.sleep(self.pause)
        except Exception as exc:  # a bug of the soak itself: reported after the join
            self.error = exc
            raise
        finally:
            self.http.close()


def _in_doubt(reply: httpx.Response) -> bool:
    """A 503 that says the transaction was sent and its outcome is unknown."""
    try:
        return bool(reply.json().get("transactions"))
    except ValueError:
        return False


# ------------------------------------------------------------------------------- checks


@dataclass
class SoakResult:
    """What the soak saw and what the checks found."""

    seconds: float
    tally: Tally
    outage: tuple[float, float]  # (went down, answered again), monotonic
    follower_back_s: float  # from the node answering again to the follower indexing past it
    chain_lots: Counter[bytes]
    indexed_lots: list[bytes]

    def in_outage(self, s: Sample) -> bool:
        """True if the request overlapped the node's absence (plus the grace)."""
        down, up = self.outage
        return s.ended >= down and s.began <= up + RESTART_GRACE_S

    def classes(self) -> Counter[str]:
        """Requests by outcome class."""
        found: Counter[str] = Counter()
        for s in self.tally.samples:
            found[self._class(s)] += 1
        return found

    def _class(self, s: Sample) -> str:
        """The outcome class of one request."""
        if s.status == 503 and self.in_outage(s):
            return "503 during node restart"
        if s.status >= 500 or s.status == 0:
            return "5xx other"
        if s.kind == BAD:
            return "4xx (bad requests)" if 400 <= s.status < 500 else "bad request not refused"
        if 200 <= s.status < 300:
            return "2xx"
        return "4xx on a good request"

    def unexpected(self) -> Counter[str]:
        """Which actions got which unacceptable status."""
        bad = ("5xx other", "bad request not refused", "4xx on a good request")
        return Counter(
            f"{s.action}: {s.status or s.error}"
            for s in self.tally.samples
            if self._class(s) in bad
        )

    def acknowledged(self) -> set[bytes]:
        """Lots the service said it recorded."""
        return {lot for w in self.tally.writes for lot in w.recorded}

    def refused(self) -> set[bytes]:
        """Lots of writes the service refused (or did not answer)."""
        return {
            lot for w in self.tally.writes if w.status != 200 and not w.in_doubt for lot in w.lots
        }

    def in_doubt(self) -> set[bytes]:
        """Lots of writes whose transaction was sent before the node went away."""
        return {lot for w in self.tally.writes if w.in_doubt for lot in w.lots}

    def problems(self) -> list[str]:
        """Everything that breaks the soak's promises (empty: it held)."""
        acked, refused = self.acknowledged(), self.refused()
        ours = {lot for w in self.tally.writes for lot in w.lots}
        on_chain = {lot for lot in self.chain_lots if lot in ours}
        indexed = {lot for lot in self.indexed_lots if lot in ours}
        found = []
        if twice := [lot for lot, n in self.chain_lots.items() if n > 1]:
            found.append(f"{len(twice)} lots recorded on chain more than once")
        if len(self.indexed_lots) != len(set(self.indexed_lots)):
            found.append("lots indexed more than once")
        if lost := acked - on_chain:
            found.append(f"{len(lost)} acknowledged lots are not on chain")
        if missing := on_chain - indexed:
            found.append(f"{len(missing)} lots on chain are not indexed")
        if extra := indexed - on_chain:
            found.append(f"{len(extra)} indexed lots are not on chain")
        if landed := refused & on_chain:
            found.append(f"{len(landed)} lots of refused writes are on chain")
        if unacked := on_chain - acked - self.in_doubt():
            found.append(f"{len(unacked)} lots on chain were never acknowledged")
        if other := Counter(o for w in self.tally.writes for o in w.other):
            found.append(f"write outcomes other than recorded: {dict(other)}")
        if unexpected := self.unexpected():
            found.append(f"unacceptable answers: {dict(unexpected)}")
        return found

    def consistency(self) -> str:
        """'ok (chain/indexed/acknowledged)' or the problems."""
        ours = {lot for w in self.tally.writes for lot in w.lots}
        counts = (
            f"{sum(n for lot, n in self.chain_lots.items() if lot in ours)}/"
            f"{sum(1 for lot in self.indexed_lots if lot in ours)}/{len(self.acknowledged())}"
        )
        problems = [p for p in self.problems() if not p.startswith("unacceptable")]
        return f"ok ({counts})" if not problems else f"FAILED ({counts}): {'; '.join(problems)}"


def chain_lots(client: ChainClient) -> Counter[bytes]:
    """How many times each harvest lot was recorded on chain (HarvestRecorded logs)."""
    address = contracts.tea_trace(client).address
    start = contracts.deployment_block(client)
    logs = rpc_call(
        client.node.url, "eth_getLogs",
        [{"address": address, "topics": [HARVEST_RECORDED], "fromBlock": hex(start),
          "toBlock": "latest"}],
    )  # fmt: skip
    return Counter(bytes.fromhex(log["topics"][1][2:]) for log in logs)


def indexed_lots(database_url: str, cooperative: str) -> list[bytes]:
    """The cooperative's lots in the indexed `harvest` table."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            mine = Harvest.cooperative == bytes.fromhex(cooperative[2:])
            return [bytes(lot) for lot in conn.execute(select(Harvest.lot).where(mine)).scalars()]
    finally:
        engine.dispose()


def _follower_back(base: str, head: int, up: float) -> float:
    """Seconds from `up` until the follower follows again, without error, past block `head`."""

    _until(
        lambda: _caught_up(base, head, clean=True),
        "the follower to recover from the node's restart",
        CATCH_UP_TIMEOUT_S,
    )
    return time.monotonic() - up


def _caught_up(base: str, head: int, clean: bool = False) -> bool:
    """True once the follower has indexed up to `head` (and, if `clean`, shows no error)."""
    health = _health(base)
    indexer = health["indexer"] if health else {}
    if clean and indexer.get("error") is not None:
        return False
    return indexer.get("state") == "following" and (indexer.get("checkpoint") or 0) >= head


# ------------------------------------------------------------------------------- the soak


def soak(seconds: float, workers: int, outage_s: float, pause: float = 0.0) -> SoakResult:
    """Set everything up, run the load with a node restart midway, check, tear down."""
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as folder:
        tmp = Path(folder)
        node = SoakNode(tmp)
        node.node.start()
        try:
            return _soak(tmp, node, seconds, workers, outage_s, pause)
        finally:
            node.node.stop()


def _soak(tmp: Path, node: SoakNode, seconds: float, workers: int, outage_s: float,
          pause: float) -> SoakResult:  # fmt: skip
    """The soak on a started node."""
    chain = ChainSettings(backend="anvil", port=node.node.port, data_dir=tmp, mnemonic=DEV_MNEMONIC)
    client = ChainClient(chain, node.node)
    deploy_system(client)
    url = f"sqlite:///{tmp / 'tealedger.db'}"
    env = service_env(ApiSettings(data_dir=tmp, database_url=url), chain)
    env["TEALEDGER_RATE_LIMIT_PER_MINUTE"] = str(1_000_000)  # the service, not its limiter
    admin = _admin_key(env)
    with served(env, tmp / "service.log") as base:
        world = build_world(base, admin)
        tally = Tally()
        began = time.monotonic()
        until = began + seconds
        crew = [Worker(n, base, world, tally, pause) for n in range(workers)]
        threads = [threading.Thread(target=w.run, args=(until,), daemon=True) for w in crew]
        for thread in threads:
            thread.start()
        time.sleep(max(0.0, seconds / 2 - outage_s / 2))
        outage = node.restart(outage_s)
        back = _follower_back(base, node.block()[0], outage[1])
        for thread in threads:
            thread.join(timeout=seconds + REQUEST_TIMEOUT_S * 2)
        if any(t.is_alive() for t in threads):
            raise RuntimeError("a soak worker did not finish")
        if failed := [w.error for w in crew if w.error is not None]:
            raise RuntimeError(f"a soak worker failed: {failed[0]!r}") from failed[0]
        elapsed = time.monotonic() - began
        head = node.block()[0]
        _until(lambda: _caught_up(base, head), "the follower to catch up", CATCH_UP_TIMEOUT_S)
        lots = chain_lots(client), indexed_lots(url, world.coop_address)
        return SoakResult(elapsed, tally, outage, back, *lots)


def _quantiles(timings: list[float]) -> tuple[float, float]:
    """p50 and p99."""
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49], cuts[98]


def rows(result: SoakResult, workers: int, outage_s: float) -> list[dict[str, Any]]:
    """The bench table's rows."""
    samples = result.tally.samples
    served_n = sum(1 for s in samples if s.status)
    classes = result.classes()
    p50, p99 = _quantiles([s.ms for s in samples])
    writes_503 = sum(1 for w in result.tally.writes if w.status == 503 and not w.in_doubt)
    doubtful = [w for w in result.tally.writes if w.in_doubt]
    landed = sum(1 for w in doubtful if all(lot in result.chain_lots for lot in w.lots))
    label = (
        f"soak: {workers} clients, {result.seconds:.0f} s, mixed reads/writes/bad requests "
        f"of every audience, node down {outage_s:.0f} s midway"
    )
    refused = (
        f"  soak 503 during node restart (of which writes refused: {writes_503}, nothing "
        f"recorded; writes sent before the node went, outcome unknown: {len(doubtful)}, of which "
        f"on chain once: {landed})"
    )
    back = round(result.follower_back_s, 1)
    wrong = classes["4xx on a good request"] + classes["bad request not refused"]
    table = [
        (f"{label}: requests served", served_n, "requests"),
        ("  soak requests/s", round(served_n / result.seconds, 1), "req/s"),
        ("  soak 2xx", classes["2xx"], "requests"),
        ("  soak 4xx (bad requests, all refused)", classes["4xx (bad requests)"], "requests"),
        (refused, classes["503 during node restart"], "requests"),
        ("  soak 5xx other (must be 0)", classes["5xx other"], "requests"),
        ("  soak 4xx on good requests or bad requests let through (must be 0)", wrong, "requests"),
        ("  soak: follower indexing again after the node answered", back, "s"),
        ("  soak latency p50 (all requests)", round(p50, 1), "ms"),
        ("  soak latency p99 (all requests)", round(p99, 1), "ms"),
        ("  soak consistency: chain lots == indexed lots == acknowledged writes",
         result.consistency(), ""),
    ]  # fmt: skip
    return [{"benchmark": b, "value": v, "unit": u} for b, v, u in table]


def run() -> list[dict[str, Any]]:
    """Soak, return the rows; raise if the service broke a promise."""
    seconds = _env_int("BENCH_SOAK_SECONDS", 180)
    workers = _env_int("BENCH_SOAK_WORKERS", 4)
    outage_s = _env_int("BENCH_SOAK_OUTAGE", 5)
    result = soak(seconds, workers, outage_s)
    table = rows(result, workers, outage_s)
    if problems := result.problems():
        for row in table:
            print(row, file=sys.stderr)
        raise RuntimeError("soak failed: " + "; ".join(problems))
    return table


if __name__ == "__main__":
    for row in run():
        print(row)
