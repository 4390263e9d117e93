"""Synthetic tea-region activity on a development chain, for the indexer's tests and benchmarks.

Deploys TeaTrace and ConsentRegistry, gives dev accounts 1-4 the cooperative, processor,
distributor and inspector roles (the same convention as `tealedger deploy`), and sends batched
transactions with calldata encoded directly (web3's argument validation and eth-abi's generic
encoder would dominate the time of a million-record run).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from web3.contract import Contract

from chain.client import ChainClient
from chain.config import BLOCK_GAS_LIMIT, DEV_MNEMONIC, PROJECT_ROOT
from chain.nodes import AnvilNode, free_port
from chain.rpc import JsonRpc
from chain.sender import PendingTx

COOPERATIVE, PROCESSOR, DISTRIBUTOR, INSPECTOR = 1, 2, 3, 4
SECOND_COOPERATIVE = 5
WALLETS = (6, 7, 8, 9)  # dev accounts used as farmer wallets (they sign consents)
MAX_YIELD_BPS = 3000
HARVEST_TYPE = "(bytes32,bytes32,uint64,uint8,uint64,bytes32)[]"
HARVEST_SELECTOR = keccak(text=f"recordHarvests({HARVEST_TYPE})")[:4]
FARMERS_TYPE = "(bytes32,address)[]"
REGISTER_FARMERS_SELECTOR = keccak(text=f"registerFarmers({FARMERS_TYPE})")[:4]
PLOTS_TYPE = "(bytes32,bytes32,uint32,uint16,bytes32)[]"
REGISTER_PLOTS_SELECTOR = keccak(text=f"registerPlots({PLOTS_TYPE})")[:4]
# Picking dates: fixed calendar days, so runs on different days make the same seasons.
SEASON_DAYS = {
    "spring": (datetime(2025, 3, 20, tzinfo=UTC), 60),
    "summer": (datetime(2025, 6, 10, tzinfo=UTC), 70),
    "autumn": (datetime(2025, 9, 5, tzinfo=UTC), 80),
}


@dataclass
class TeaSystem:
    """The deployed traceability contracts and who plays which role."""

    client: ChainClient
    trace: Contract
    consent: Contract

    def address(self, index: int) -> str:
        """Address of dev account `index`."""
        return str(self.client.accounts[index].address)


@dataclass(frozen=True)
class FarmerSeed:
    """A generated farmer: id, cooperative account index, plots and optional wallet index."""

    farmer: bytes
    cooperative: int
    plots: tuple[bytes, ...]
    wallet: int | None = None


@dataclass
class Region:
    """What a scenario created, for assertions."""

    farmers: list[FarmerSeed] = field(default_factory=list)
    harvest_lots: list[bytes] = field(default_factory=list)
    made_lots: list[bytes] = field(default_factory=list)


def _id(*parts: object) -> bytes:
    """Deterministic 32-byte id from labels."""
    return keccak(text=":".join(str(p) for p in parts))


def deploy_tea(client: ChainClient) -> TeaSystem:
    """Deploy (or reuse) TeaTrace and ConsentRegistry and grant the supply-chain roles."""
    admin = client.accounts[0].address
    client.deploy("TeaTrace", (admin, MAX_YIELD_BPS))
    trace = client.contract("TeaTrace")
    client.deploy("ConsentRegistry", (trace.address,))
    consent = client.contract("ConsentRegistry")
    system = TeaSystem(client, trace, consent)
    roles = {
        "COOPERATIVE_ROLE": (COOPERATIVE, SECOND_COOPERATIVE),
        "PROCESSOR_ROLE": (PROCESSOR,),
        "DISTRIBUTOR_ROLE": (DISTRIBUTOR,),
        "INSPECTOR_ROLE": (INSPECTOR,),
    }
    calls = []
    for role_name, members in roles.items():
        role = keccak(text=role_name)
        for member in members:
            if not trace.functions.hasRole(role, system.address(member)).call():
                calls.append(trace.functions.grantRole(role, system.address(member)))
    if calls:
        sender = client.sender(0)
        sender.wait(sender.send_many(calls, gas=120_000))
    return system


def register_farmers(
    system: TeaSystem, count: int, seed: int = 1, cooperatives: Sequence[int] = (COOPERATIVE,)
) -> list[FarmerSeed]:
    """Register `count` farmers (1-2 plots each), the first few with a wallet; batched."""
    rng = random.Random(seed)
    farmers: list[FarmerSeed] = []
    for i in range(count):
        wallet = WALLETS[i] if i < len(WALLETS) and seed == 1 else None
        plots = tuple(_id("plot", seed, i, p) for p in range(1 + rng.randrange(2)))
        farmers.append(
            FarmerSeed(_id("farmer", seed, i), cooperatives[i % len(cooperatives)], plots, wallet)
        )
    for coop in cooperatives:
        mine = [f for f in farmers if f.cooperative == coop]
        _register_batch(system, coop, mine, rng)
    return farmers


def _register_batch(
    system: TeaSystem, coop: int, farmers: list[FarmerSeed], rng: random.Random
) -> None:
    """Farmers then plots of one cooperative, 200 per transaction."""
    to, sender = system.trace.address, system.client.sender(coop)
    zero = "0x" + "00" * 20
    pending: list[PendingTx] = []
    for chunk in _chunks(farmers, 200):
        regs = [(f.farmer, system.address(f.wallet) if f.wallet else zero) for f in chunk]
        data = REGISTER_FARMERS_SELECTOR + encode([FARMERS_TYPE], [regs])
        pending += sender.send_many(
            [{"to": to, "data": "0x" + data.hex()}], gas=60_000 * len(regs) + 100_000
        )
    plots = [
        (p, f.farmer, 50 + rng.randrange(450), rng.randrange(4), _id("loc", p.hex()))
        for f in farmers
        for p in f.plots
    ]
    for chunk in _chunks(plots, 200):
        data = REGISTER_PLOTS_SELECTOR + encode([PLOTS_TYPE], [list(chunk)])
        pending += sender.send_many(
            [{"to": to, "data": "0x" + data.hex()}], gas=80_000 * len(chunk) + 100_000
        )
    wait_receipts(system.client, [(coop, p) for p in pending])


def wait_receipts(client: ChainClient, pending: Sequence[tuple[int, PendingTx]]) -> None:
    """Wait for receipts (of (account index, tx) pairs) over raw JSON-RPC; a failed
    transaction raises its decoded error.

    web3 formats every log of a receipt (a thousand per harvest batch), which costs more than
    the node's execution; only the status is needed here.
    """
    if not client.node.url.startswith("http"):
        for index, p in pending:
            client.sender(index).wait([p])
        return
    rpc = JsonRpc(client.node.url)
    try:
        for index, p in pending:
            deadline = time.monotonic() + 120
            while (receipt := rpc.call("eth_getTransactionReceipt", [p.hash.to_0x_hex()])) is None:
                if time.monotonic() > deadline:
                    client.sender(index).wait([p])  # raises the timeout error
                time.sleep(0.02)
            if int(receipt["status"], 16) != 1:
                client.sender(index).wait([p])  # raises the decoded revert
    finally:
        rpc.close()


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Consecutive slices of at most `size` items."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def harvest_records(
    farmers: Sequence[FarmerSeed], per_farmer: int, seed: int = 1, tag: str = ""
) -> dict[int, list[tuple[Any, ...]]]:
    """`per_farmer` harvest records for each farmer, grouped by cooperative account."""
    rng = random.Random(seed)
    seasons = list(SEASON_DAYS.values())
    out: dict[int, list[tuple[Any, ...]]] = {}
    for f in farmers:
        for k in range(per_farmer):
            start, days = seasons[k % len(seasons)]
            picked = int(start.timestamp()) + rng.randrange(days * 86400)
            grams = 5_000 + rng.randrange(35_000)
            record = (f.farmer, rng.choice(f.plots), grams, 1 + rng.randrange(5), picked,
                      _id("harvest", seed, tag, f.farmer.hex(), k))  # fmt: skip
            out.setdefault(f.cooperative, []).append(record)
    return out


def harvest_calldata(records: Sequence[tuple[Any, ...]]) -> bytes:
    """recordHarvests(records) calldata, the static tuples laid out word by word.

    eth-abi's generic encoder costs more than the node's execution at a million records; the
    layout (offset, length, six words per record) is checked against eth-abi in the tests.
    """
    parts = [HARVEST_SELECTOR, (32).to_bytes(32, "big"), len(records).to_bytes(32, "big")]
    for farmer, plot, grams, grade, picked, data_hash in records:
        parts += [farmer, plot, grams.to_bytes(32, "big"), grade.to_bytes(32, "big"),
                  picked.to_bytes(32, "big"), data_hash]  # fmt: skip
    return b"".join(parts)


def send_harvests(
    system: TeaSystem,
    records: dict[int, list[tuple[Any, ...]]],
    batch: int = 300,
    per_block: int = 1,
) -> list[bytes]:
    """Record harvests in batched, pipelined transactions; returns the new lot ids.

    With `per_block` > 1 the node's automine is paused and every `per_block` transactions are
    mined as one block (anvil, ganache): a development node recomputes the contract's storage
    root per block, so one block per transaction grows quadratically with a million lots.
    """
    to = system.trace.address
    client = system.client
    block_gas = int(client.w3.eth.get_block("latest")["gasLimit"])
    gas = min(block_gas // per_block - 1_000_000, 40_000 * batch + 200_000)
    calls = [
        (coop, harvest_calldata(c)) for coop, recs in records.items() for c in _chunks(recs, batch)
    ]
    lots: list[bytes] = []
    for coop, recs in records.items():
        creator = bytes.fromhex(system.address(coop)[2:])
        lots += [keccak(b"\x00" * 12 + creator + r[5]) for r in recs]
    if per_block > 1:
        _rpc(client, "evm_setAutomine", [False])
    try:
        for group in _chunks(calls, per_block) if per_block > 1 else [calls]:
            fees = client.sender(group[0][0]).fees()
            pending = [(coop, client.sender(coop).send({"to": to, "data": "0x" + data.hex()},
                                                       gas=gas, fees=fees))
                       for coop, data in group]  # fmt: skip
            if per_block > 1:
                _rpc(client, "evm_mine", [])
            wait_receipts(client, pending)
    finally:
        if per_block > 1:
            _rpc(client, "evm_setAutomine", [True])
    return lots


def _rpc(client: ChainClient, method: str, params: list[Any]) -> Any:
    """A raw JSON-RPC call to the client's node."""
    return client.w3.provider.make_request(method, params)  # type: ignore[arg-type]


def supply_chain(system: TeaSystem, harvest_lots: Sequence[bytes], seed: int = 1) -> list[bytes]:
    """Ship lots to the processor, make tea in merges and splits, blend, sell, attest, recall.

    `harvest_lots` must be held by the first cooperative. Returns the made-tea lot ids.
    """
    rng = random.Random(seed)
    trace, client = system.trace, system.client
    coop, proc, dist, insp = (
        client.sender(i) for i in (COOPERATIVE, PROCESSOR, DISTRIBUTOR, INSPECTOR)
    )
    lots = list(harvest_lots)
    direct, lots = lots[:1], lots[1:]  # one fresh-leaf lot sold straight to the processor
    coop.transact(trace.functions.sell(direct[0], proc.address, 12_345))
    coop.transact(trace.functions.shipBatch(lots, proc.address))
    proc.transact(trace.functions.receiveBatch(lots))
    grams = dict(zip(lots, [trace.functions.lot(x).call()[1] for x in lots], strict=True))
    made: list[bytes] = []
    for step, inputs in enumerate(_chunks(lots, 7)):
        fresh = sum(grams[x] for x in inputs)
        outs = _split(fresh * MAX_YIELD_BPS // 10_000 * 9 // 10, 1 + step % 3)
        outputs = [(g, _id("out", seed, step, j)) for j, g in enumerate(outs)]
        proc.transact(trace.functions.process(list(inputs), outputs))
        made += [keccak(b"\x00" * 12 + bytes.fromhex(proc.address[2:]) + o[1]) for o in outputs]
    made_grams = {m: trace.functions.lot(m).call()[1] for m in made}
    blend_in = made[:2]
    blend = (sum(made_grams[m] for m in blend_in), _id("blend", seed))
    proc.transact(trace.functions.process(blend_in, [blend]))
    blend_lot = keccak(b"\x00" * 12 + bytes.fromhex(proc.address[2:]) + blend[1])
    for_sale = [blend_lot, *made[2:]]
    prices = [rng.randrange(10_000, 900_000) for _ in for_sale]
    proc.transact(trace.functions.sellBatch(for_sale, dist.address, prices))
    insp.transact(trace.functions.attestQuality((for_sale[-1], 2, False, _id("cert", seed, 1))))
    insp.transact(trace.functions.attestQuality((blend_lot, 1, True, _id("cert", seed, 2))))
    insp.transact(
        trace.functions.recall(for_sale[1] if len(for_sale) > 1 else blend_lot, _id("recall", seed))
    )
    return [blend_lot, *made]


def _split(total: int, parts: int) -> list[int]:
    """Split `total` grams into `parts` positive parts."""
    base = total // parts
    return [base + (total - base * parts if i == 0 else 0) for i in range(parts)]


def grant_consents(system: TeaSystem, farmers: Sequence[FarmerSeed], lender: int = 0) -> None:
    """Every farmer with a wallet lets `lender` read its profile for 30 days; one revokes."""
    client = system.client
    now = client.w3.eth.get_block("latest")["timestamp"]
    lender_address = system.address(lender)
    with_wallet = [f for f in farmers if f.wallet is not None]
    for f in with_wallet:
        assert f.wallet is not None
        client.sender(f.wallet).transact(
            system.consent.functions.grantConsent(f.farmer, lender_address, now + 30 * 86400)
        )
    if with_wallet:
        last = with_wallet[-1]
        assert last.wallet is not None
        client.sender(last.wallet).transact(
            system.consent.functions.revokeConsent(last.farmer, lender_address)
        )


LENDER, MERCHANT, REGISTRAR = 4, 2, 3
DAY = 86_400


@dataclass
class LendingSystem:
    """Payment token, merchant registry and loan factory, wired for the dev accounts."""

    client: ChainClient
    token: Contract
    registry: Contract
    factory: Contract
    category: bytes


def _deployed(client: ChainClient, name: str, args: tuple[Any, ...]) -> Contract:
    """Deploy (or reuse) a contract and return it."""
    client.deploy(name, args)
    return client.contract(name)


def deploy_lending(system: TeaSystem) -> LendingSystem:
    """Deploy the loan contracts; account 4 lends, 3 registers merchants, 2 is a merchant."""
    client = system.client
    admin = system.address(0)
    token = _deployed(client, "PaymentToken", ("Digital Yuan (development)", "eCNY", admin))
    registry = _deployed(client, "MerchantRegistry", (admin,))
    factory = _deployed(
        client, "LoanFactory", (token.address, registry.address, system.trace.address, admin)
    )
    wallets = [system.address(w) for w in WALLETS]
    calls = [
        token.functions.mint(system.address(LENDER), 10**10),
        *(token.functions.mint(w, 10**8) for w in wallets),
    ]
    for contract, role, member in ((registry, "REGISTRAR_ROLE", REGISTRAR),
                                   (factory, "LENDER_ROLE", LENDER)):  # fmt: skip
        if not contract.functions.hasRole(keccak(text=role), system.address(member)).call():
            calls.append(contract.functions.grantRole(keccak(text=role), system.address(member)))
    client.sender(0).wait(client.sender(0).send_many(calls, gas=200_000))
    category = registry.functions.categoryId("fertilizer").call()
    registrar = client.sender(REGISTRAR)
    if not registry.functions.isCategory(category).call():
        registrar.transact(registry.functions.registerCategory("fertilizer"))
    if not registry.functions.isApproved(system.address(MERCHANT), category).call():
        far = _now(client) + 3650 * DAY
        merchant = system.address(MERCHANT)
        registrar.transact(registry.functions.approveMerchant(merchant, category, far))
    client.sender(LENDER).transact(token.functions.approve(factory.address, 10**10))
    return LendingSystem(client, token, registry, factory, category)


def _now(client: ChainClient) -> int:
    """Timestamp of the latest block."""
    return int(client.w3.eth.get_block("latest")["timestamp"])


def travel(client: ChainClient, seconds: int) -> None:
    """Move the chain's clock forward and mine a block (anvil, ganache)."""
    client.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def issue_loan(lending: LendingSystem, farmer: FarmerSeed, principal: int = 100_000) -> Contract:
    """Issue and fund a loan (due in two minutes, one grace and one default day)."""
    client = lending.client
    assert farmer.wallet is not None
    now = _now(client)
    params = (
        farmer.farmer, client.accounts[farmer.wallet].address, client.accounts[COOPERATIVE].address,
        principal, [lending.category], [principal], _id("schedule", farmer.farmer.hex(), now),
        _id("disclosure"), now + 60, principal * 108 // 100, now + 120, 1, 1, 0, 800,
    )  # fmt: skip
    acceptance = _accept(lending, params, client.accounts[farmer.wallet])
    client.sender(LENDER).transact(lending.factory.functions.issueAndFundLoan(params, acceptance))
    escrow = lending.factory.functions.latestLoanOf(farmer.farmer).call()
    return client.contract("LoanEscrow", escrow)


def _accept(lending: LendingSystem, params: tuple[Any, ...], wallet: Any) -> tuple[Any, ...]:
    """The farmer's wallet signs the loan's terms (LoanFactory.acceptanceDigest, then ECDSA)."""
    client, factory = lending.client, lending.factory.functions
    nonce = factory.acceptanceNonce(params[0]).call()
    deadline = _now(client) + DAY
    lender = client.accounts[LENDER].address
    digest = factory.acceptanceDigest(params, lender, nonce, deadline).call()
    signed = wallet.unsafe_sign_hash(digest)
    return (nonce, deadline, bytes(signed.signature))


def lend(system: TeaSystem, farmers: Sequence[FarmerSeed]) -> list[Contract]:
    """Two loans: one drawn and repaid in full on time; one drawn, repaid in part, defaulted,
    then repaid a little late."""
    lending = deploy_lending(system)
    client = system.client
    good, bad = [f for f in farmers if f.wallet is not None][:2]
    escrows = []
    # owed pro rata: 60,000 drawn x 1.08 = 64,800 (repaid in full); 50,000 drawn owes 54,000
    for farmer, draw, repay in ((good, 60_000, 64_800), (bad, 50_000, 10_000)):
        assert farmer.wallet is not None
        escrow = issue_loan(lending, farmer)
        wallet = client.sender(farmer.wallet)
        wallet.transact(escrow.functions.orderPayment(
            system.address(MERCHANT), lending.category, draw, _id("invoice", farmer.farmer.hex())
        ))  # fmt: skip
        wallet.transact(lending.token.functions.approve(escrow.address, 10**8))
        wallet.transact(escrow.functions.repay(repay))
        escrows.append(escrow)
    travel(client, 3 * DAY)
    client.sender(LENDER).transact(escrows[0].functions.refreshStatus())
    client.sender(LENDER).transact(escrows[1].functions.refreshStatus())
    client.sender(LENDER).transact(escrows[1].functions.declareDefault())
    assert bad.wallet is not None
    client.sender(bad.wallet).transact(escrows[1].functions.repay(5_000))
    return escrows


def scenario(client: ChainClient, farmers: int = 12, per_farmer: int = 4, seed: int = 1) -> Region:
    """A small region exercising every traceability event: the indexer tests' standard chain."""
    system = deploy_tea(client)
    seeds = register_farmers(system, farmers, seed, (COOPERATIVE, SECOND_COOPERATIVE))
    records = harvest_records(seeds, per_farmer, seed)
    lots = send_harvests(system, records, batch=25)
    first_coop = [lot for lot in lots[: len(records.get(COOPERATIVE, []))]]
    made = supply_chain(system, first_coop[: max(8, len(first_coop) // 2)], seed)
    grant_consents(system, seeds)
    trace, coop = system.trace, client.sender(COOPERATIVE)
    mine = [f for f in seeds if f.cooperative == COOPERATIVE]
    coop.transact(trace.functions.deactivateFarmer(mine[-1].farmer))
    coop.transact(trace.functions.reactivateFarmer(mine[-1].farmer))
    lend(system, seeds)
    return Region(seeds, lots, made)


class EphemeralAnvil(AnvilNode):
    """anvil without its periodic state dump (which costs a core at large states): for
    benchmarks and tests whose chain may vanish with the process.

    Its blocks are a real network's size (BLOCK_GAS_LIMIT; the project's anvil mines bigger
    ones). A benchmark may raise the limit (`block_gas_limit`: bigger batches per transaction),
    start from a
    state file written earlier (`load_state`) or have anvil write one when stopped (`dump_state`).
    """

    default_block_gas_limit = BLOCK_GAS_LIMIT
    # The reorg tests roll back 50 blocks, then reorg 20 (64 states are too few for those).
    kept_states = 128
    load_state: Path | None = None
    dump_state: Path | None = None
    stop_grace: float = 15.0

    def arguments(self) -> list[str]:
        """anvil's flags minus --state/--state-interval, plus the optional ones."""
        args = super().arguments()
        for flag in ("--state", "--state-interval"):
            i = args.index(flag)
            del args[i : i + 2]
        if self.load_state is not None:
            args += ["--load-state", str(self.load_state)]
        if self.dump_state is not None:  # once, on exit: periodic dumps grow with the chain
            args += ["--dump-state", str(self.dump_state), "--state-interval", str(10**9)]
        return args

    def _terminate(self, pid: int, grace: float = 15.0) -> None:
        """Stop the node and wait for its whole process group: npx exits at once, while anvil
        may still be writing a large state file."""
        grace = max(grace, self.stop_grace)
        super()._terminate(pid, grace)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def start_anvil(
    data_dir: Path,
    accounts: int = 10,
    gas_limit: int = BLOCK_GAS_LIMIT,
    load_state: Path | None = None,
    dump_state: Path | None = None,
    start_timeout: float = 60.0,
) -> EphemeralAnvil:
    """Start an ephemeral anvil on a free port."""
    node = EphemeralAnvil(
        data_dir, PROJECT_ROOT, free_port(), DEV_MNEMONIC, accounts=accounts,
        start_timeout=start_timeout, block_gas_limit=gas_limit,
    )  # fmt: skip
    node.load_state, node.dump_state = load_state, dump_state
    if dump_state is not None:
        node.stop_grace = 600.0
    node.start()
    return node
