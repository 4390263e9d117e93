"""Shared set-up of the loan contracts (imported explicitly by the loan test modules).

One deployment per module on the in-process EVM; each test runs in a snapshot that is reverted
afterwards. Accounts: 0 admin, 1 lender, 2 farmer, 3 cooperative (agent, share committer),
4 and 5 merchants, 6 registrar, 7 distributor, 8 second farmer, 9 outsider.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from web3.contract import Contract

from chain.client import ChainClient
from chain.errors import ContractRevertError, revert_class
from chain.revert import revert_data
from chain.sender import Sender
from lending.loans import errors as loan_errors
from lending.loans.disbursement import (
    Acceptance,
    ConfirmationMode,
    EscrowTerms,
    IssuedLoan,
    LoanDesk,
    category_id,
)
from lending.loans.merchants import MerchantDesk
from lending.loans.settlement import SettlementDesk
from tests._fixtures import client_for

ADMIN, LENDER, FARMER, COOP, MERCHANT, MERCHANT2, REGISTRAR, DISTRIBUTOR, FARMER2, OUTSIDER = range(
    10
)
CATEGORIES = ("equipment", "fertilizer", "labour service", "seedlings")
FERTILIZER = category_id("fertilizer")
SEEDLINGS = category_id("seedlings")
EQUIPMENT = category_id("equipment")
DAY = 86_400
YEAR = 365 * DAY
LENDER_FUNDS = 10**12  # fen
DISTRIBUTOR_FUNDS = 10**12
FARMER_ID = keccak(text="farmer-1")
FARMER2_ID = keccak(text="farmer-2")
FARMER3_ID = keccak(text="farmer-3 (no wallet)")
COOP_ADDRESS = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"  # dev account 3 (asserted below)
LOT_DATA = keccak(text="lot-1")
LOT = keccak(bytes(12) + bytes.fromhex(COOP_ADDRESS[2:]) + LOT_DATA)
"""The cooperative's lot: TeaTrace's lotId(COOP, LOT_DATA), so COOP, its maker, commits it."""


def invoice(n: int) -> bytes:
    """A distinct invoice hash."""
    return keccak(text=f"invoice-{n}")


@dataclass
class LoanSystem:
    """Token, registry, factory, settlement and a TeaTrace stand-in on one chain."""

    client: ChainClient
    token: Contract
    registry: Contract
    factory: Contract
    trace: Contract
    settlement: Contract
    start_block: int = 0
    desk: LoanDesk = field(init=False)
    merchants: MerchantDesk = field(init=False)
    sales: SettlementDesk = field(init=False)

    def __post_init__(self) -> None:
        self.desk = LoanDesk(self.client, self.factory.address)
        self.merchants = MerchantDesk(self.client, self.registry.address, self.start_block)
        self.sales = SettlementDesk(self.client, self.settlement.address, self.start_block)

    def sender(self, index: int) -> Sender:
        return self.client.sender(index)

    def addr(self, index: int) -> str:
        return self.client.accounts[index].address

    def now(self) -> int:
        return int(self.client.w3.eth.get_block("latest")["timestamp"])

    def travel(self, seconds: int) -> None:
        """Mine a block `seconds` after the latest one (in-process EVM)."""
        self.client.w3.testing.timeTravel(self.now() + seconds)

    def balance(self, who: str | int) -> int:
        address = self.addr(who) if isinstance(who, int) else who
        return int(self.token.functions.balanceOf(address).call())

    def escrow(self, address: str) -> Contract:
        return self.client.contract("LoanEscrow", address)

    def terms(self, **overrides: Any) -> EscrowTerms:
        """Default terms: 10,000.00 yuan over fertilizer/seedlings/equipment, 8% interest."""
        now = self.now()
        values: dict[str, Any] = {
            "farmer_id": FARMER_ID,
            "farmer": self.addr(FARMER),
            "lender": self.addr(LENDER),
            "principal_fen": 1_000_000,
            "budgets_fen": {"fertilizer": 500_000, "seedlings": 300_000, "equipment": 200_000},
            "schedule_hash": keccak(text=f"schedule-{now}-{overrides.get('farmer_id', b'')!r}"),
            "disclosure_hash": keccak(text="disclosure"),
            "draw_deadline": now + 30 * DAY,
            "total_due_fen": 1_080_000,
            "due_date": now + YEAR,
            "grace_days": 10,
            "default_days": 60,
            "agent": self.addr(COOP),
            "mode": ConfirmationMode.IMMEDIATE,
            "apr_bps": 800,
        }
        values.update(overrides)
        return EscrowTerms(**values)

    def accept(self, terms: EscrowTerms, **kwargs: Any) -> Acceptance:
        """The farmer's acceptance of `terms`, signed by the dev account holding terms.farmer."""
        return self.desk.sign_acceptance(terms, self.wallet(terms.farmer), **kwargs)

    def wallet(self, address: str) -> Any:
        """The dev account with `address`."""
        return next(a for a in self.client.accounts if a.address.lower() == address.lower())

    def issue(
        self, fund: bool = True, acceptance: Acceptance | None = None, **overrides: Any
    ) -> IssuedLoan:
        terms = self.terms(**overrides)
        accepted = acceptance or self.accept(terms)
        return self.desk.issue(terms, self.sender(LENDER), accepted, fund=fund)

    def pay(
        self,
        escrow: str,
        amount: int,
        n: int = 1,
        merchant: int = MERCHANT,
        category: bytes = FERTILIZER,
        by: int = FARMER,
    ) -> Any:
        return self.desk.order_payment(
            escrow, self.addr(merchant), category, amount, invoice(n), self.sender(by)
        )

    def snapshot(self) -> Any:
        return self.client.w3.testing.snapshot()

    def revert(self, snapshot: Any) -> None:
        self.client.w3.testing.revert(snapshot)
        for index in range(len(self.client.accounts)):
            self.client.sender(index).reset_nonce()


def _deploy(client: ChainClient, contract: str, args: tuple[Any, ...], suffix: str) -> Contract:
    deployment, _ = client.deploy(contract, args, name=f"{contract}{suffix}")
    return client.contract(contract, deployment.address)


def deploy_loan_system(
    client: ChainClient, token_contract: str = "PaymentToken", suffix: str = ""
) -> LoanSystem:
    """Deploy and wire everything; mint and approve so tests start from a working state."""
    admin = client.sender(ADMIN)
    start_block = client.w3.eth.block_number
    acct = [a.address for a in client.accounts]
    assert acct[COOP] == COOP_ADDRESS
    token_args = ("Fen", "FEN", acct[ADMIN]) if token_contract == "PaymentToken" else ()
    token = _deploy(client, token_contract, token_args, suffix)
    registry = _deploy(client, "MerchantRegistry", (acct[ADMIN],), suffix)
    trace = _deploy(client, "MockTeaLedger", (), suffix)
    factory = _deploy(
        client, "LoanFactory", (token.address, registry.address, trace.address, acct[ADMIN]), suffix
    )
    settlement = _deploy(
        client, "SaleSettlement", (token.address, factory.address, trace.address, acct[ADMIN]),
        suffix,
    )  # fmt: skip
    calls = [
        registry.functions.grantRole(keccak(text="REGISTRAR_ROLE"), acct[REGISTRAR]),
        factory.functions.grantRole(keccak(text="LENDER_ROLE"), acct[LENDER]),
        settlement.functions.grantRole(keccak(text="SHARE_COMMITTER_ROLE"), acct[COOP]),
        settlement.functions.grantRole(keccak(text="DISTRIBUTOR_ROLE"), acct[DISTRIBUTOR]),
        token.functions.mint(acct[LENDER], LENDER_FUNDS),
        token.functions.mint(acct[DISTRIBUTOR], DISTRIBUTOR_FUNDS),
        trace.functions.setFarmer(FARMER_ID, acct[COOP], acct[FARMER]),
        trace.functions.setFarmer(FARMER2_ID, acct[COOP], acct[FARMER2]),
        trace.functions.setFarmer(FARMER3_ID, acct[COOP], "0x" + "00" * 20),
        trace.functions.setLot(LOT, acct[DISTRIBUTOR], 1000),
    ]
    admin.wait(admin.send_many(calls, gas=300_000))
    system = LoanSystem(client, token, registry, factory, trace, settlement, start_block)
    registrar = client.sender(REGISTRAR)
    registrar.wait(registrar.send_many(
        [registry.functions.registerCategory(name) for name in CATEGORIES], gas=200_000
    ))  # fmt: skip
    far = system.now() + 10 * YEAR
    approvals = [
        registry.functions.approveMerchant(acct[m], category_id(c), far)
        for m in (MERCHANT, MERCHANT2)
        for c in CATEGORIES
    ]
    registrar.wait(registrar.send_many(approvals, gas=200_000))
    lender = client.sender(LENDER)
    lender.transact(token.functions.approve(factory.address, LENDER_FUNDS))
    return system


def trace_loan_system(tmp_path: Path) -> LoanSystem:
    """Loan contracts plus the real TeaTrace, with LoanFactory and SaleSettlement reading it."""
    client = client_for("embedded", tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    system = deploy_loan_system(client)
    admin = system.addr(ADMIN)
    deployment, _ = client.deploy("TeaTrace", (admin, 3000))
    trace = client.contract("TeaTrace", deployment.address)
    deployment, _ = client.deploy(
        "LoanFactory",
        (system.token.address, system.registry.address, trace.address, admin),
        name="LoanFactoryOnTeaTrace",
    )
    factory = client.contract("LoanFactory", deployment.address)
    deployment, _ = client.deploy(
        "SaleSettlement",
        (system.token.address, factory.address, trace.address, admin),
        name="SaleSettlementOnTeaTrace",
    )
    settlement = client.contract("SaleSettlement", deployment.address)
    roles = [
        factory.functions.grantRole(keccak(text="LENDER_ROLE"), system.addr(LENDER)),
        trace.functions.grantRole(keccak(text="COOPERATIVE_ROLE"), system.addr(COOP)),
        trace.functions.grantRole(keccak(text="PROCESSOR_ROLE"), system.addr(COOP)),
        trace.functions.grantRole(keccak(text="DISTRIBUTOR_ROLE"), system.addr(DISTRIBUTOR)),
        settlement.functions.grantRole(keccak(text="SHARE_COMMITTER_ROLE"), system.addr(COOP)),
        settlement.functions.grantRole(keccak(text="DISTRIBUTOR_ROLE"), system.addr(DISTRIBUTOR)),
    ]
    admin_sender = client.sender(ADMIN)
    admin_sender.wait(admin_sender.send_many(roles, gas=200_000))
    lender = client.sender(LENDER)
    lender.transact(system.token.functions.approve(factory.address, LENDER_FUNDS))
    system.trace, system.settlement, system.factory = trace, settlement, factory
    system.start_block = client.w3.eth.block_number
    system.__post_init__()
    return system


@pytest.fixture(scope="module")
def loans_module(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoanSystem, Any]:
    """The loan contracts deployed once per test module, and a snapshot of that state."""
    data_dir = tmp_path_factory.mktemp("loans")
    client = client_for("embedded", data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    system = deploy_loan_system(client)
    return system, system.snapshot()


@pytest.fixture
def loans(loans_module: tuple[LoanSystem, Any]) -> Iterator[LoanSystem]:
    """The module's loan system, rolled back after the test."""
    system, snapshot = loans_module
    try:
        yield system
    finally:
        system.revert(snapshot)


@contextmanager
def reverts(name: str, **expected: object) -> Iterator[pytest.ExceptionInfo[Exception]]:
    """Expect the contract custom error `name` with the given argument values, raised either
    by the chain layer or as the named lending error."""
    named = loan_errors.error_class(name)
    kinds = (revert_class(name),) if named is None else (revert_class(name), named)
    with pytest.raises(kinds) as info:
        yield info
    error = info.value
    if isinstance(error, ContractRevertError):
        values = error.args_by_name
    else:
        assert error.name == name, (error.name, name)
        values = error.values
    for key, value in expected.items():
        assert values[key] == value, (key, values)


def raw(system: LoanSystem, index: int, fn: Any) -> Any:
    """Send through the chain layer directly (no translation), waiting for the receipt."""
    return system.sender(index).transact(fn)


def view(system: LoanSystem, fn: Any) -> Any:
    """eth_call `fn`; a revert raises the chain layer's decoded error."""
    try:
        return fn.call()
    except Exception as exc:
        data = revert_data(exc)
        if data is None:
            raise
        raise system.client.decoder.decode(data) from exc
