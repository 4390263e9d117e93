"""Loan disbursement: gas per action (in-process EVM) and application-to-merchant-paid latency
(anvil, pipelined).

Run: `.venv/bin/python -m bench.bench_disbursement` (prints a markdown table; docs/disbursement.md
holds one). The gas figures run on a fresh in-process EVM with fixed inputs, so they are stable;
tests/contracts/test_loan_escrow.py asserts them within a margin (`gas_rows`). The latency runs
on a throw-away anvil started on a free port: each of LOANS applications is priced (schedule,
APR disclosure and rate cap, lending/disclosure.py), turned into EscrowTerms, issued and funded in
one transaction, and its first merchant payment is sent right behind it to the CREATE2-predicted
escrow without waiting (`LoanDesk.disburse_first_payment`); the clock stops at the payment's
receipt. The same flow sent one transaction at a time is the baseline.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_utils import keccak

from chain.client import ChainClient
from chain.config import DEV_MNEMONIC, PROJECT_ROOT, ChainSettings
from chain.nodes import AnvilNode, free_port
from chain.sender import Sender
from lending.loans.contracts import (
    DISTRIBUTOR_ROLE,
    LENDER_ROLE,
    REGISTRAR_ROLE,
    SHARE_COMMITTER_ROLE,
)
from lending.loans.disbursement import (
    Acceptance,
    ConfirmationMode,
    EscrowTerms,
    LoanDesk,
    category_id,
)
from lending.pricing.disclosure import disclose
from lending.pricing.lpr import load_lpr_table
from lending.pricing.schedule import ScheduleKind
from lending.pricing.schedule import ScheduleTerms as Offer

ADMIN, LENDER, FARMER, COOP, MERCHANT, REGISTRAR, DISTRIBUTOR = range(7)
GAS = 20_000_000  # explicit: py-evm's estimate_gas re-runs each transaction many times
DAY = 86_400
CATEGORIES = ("equipment", "fertilizer", "labour service", "seedlings")
BUDGETS = {"fertilizer": 500_000, "seedlings": 300_000, "equipment": 200_000}
LOANS = 20
ZERO = "0x" + "00" * 20


@dataclass
class _Rig:
    """Deployed loan contracts and their desk."""

    client: ChainClient
    token: Any
    registry: Any
    factory: Any
    trace: Any
    settlement: Any
    desk: LoanDesk

    def sender(self, index: int) -> Sender:
        """Account `index`'s sender."""
        return self.client.sender(index)

    def addr(self, index: int) -> str:
        """Account `index`'s address."""
        return str(self.client.accounts[index].address)

    def now(self) -> int:
        """Latest block time."""
        return int(self.client.w3.eth.get_block("latest")["timestamp"])

    def tx(self, index: int, fn: Any) -> int:
        """Gas used by one transaction from account `index`."""
        return int(self.sender(index).transact(fn, gas=GAS)["gasUsed"])

    def register(self, farmer_ids: list[bytes]) -> None:
        """Register farmers (wallet: the FARMER account) in the TeaTrace stand-in."""
        admin = self.sender(ADMIN)
        calls = [
            self.trace.functions.setFarmer(f, self.addr(COOP), self.addr(FARMER))
            for f in farmer_ids
        ]
        admin.wait(admin.send_many(calls, gas=200_000))

    def accept(self, terms: EscrowTerms) -> Acceptance:
        """The farmer's signed acceptance of `terms` (the FARMER dev wallet signs)."""
        return self.desk.sign_acceptance(terms, self.client.accounts[FARMER])

    def terms(
        self,
        n: int,
        mode: ConfirmationMode = ConfirmationMode.IMMEDIATE,
        farmer_id: bytes | None = None,
    ) -> EscrowTerms:
        """Loan `n`'s terms (distinct farmer id and schedule)."""
        now = self.now()
        return EscrowTerms(
            farmer_id=farmer_id or keccak(text=f"farmer-{n}"),
            farmer=self.addr(FARMER),
            lender=self.addr(LENDER),
            principal_fen=1_000_000,
            budgets_fen=BUDGETS,
            schedule_hash=keccak(text=f"schedule-{n}"),
            disclosure_hash=keccak(text=f"disclosure-{n}"),
            draw_deadline=now + 30 * DAY,
            total_due_fen=1_080_000,
            due_date=now + 365 * DAY,
            grace_days=10,
            agent=self.addr(COOP),
            mode=mode,
            apr_bps=800,
        )


def _deploy(client: ChainClient, name: str, args: tuple[Any, ...] = ()) -> Any:
    """Deploy (or reuse) a contract and return its web3 object."""
    deployment, _ = client.deploy(name, args)
    return client.contract(name, deployment.address)


def _rig(client: ChainClient) -> _Rig:
    """Token, registry, factory, a TeaTrace stand-in and settlement, wired and funded."""
    acct = [a.address for a in client.accounts]
    token = _deploy(client, "PaymentToken", ("Fen", "FEN", acct[ADMIN]))
    registry = _deploy(client, "MerchantRegistry", (acct[ADMIN],))
    trace = _deploy(client, "MockTeaLedger")
    factory = _deploy(
        client, "LoanFactory", (token.address, registry.address, trace.address, acct[ADMIN])
    )
    settlement = _deploy(
        client, "SaleSettlement", (token.address, factory.address, trace.address, acct[ADMIN])
    )
    admin = client.sender(ADMIN)
    admin.wait(admin.send_many([
        registry.functions.grantRole(REGISTRAR_ROLE, acct[REGISTRAR]),
        factory.functions.grantRole(LENDER_ROLE, acct[LENDER]),
        settlement.functions.grantRole(SHARE_COMMITTER_ROLE, acct[COOP]),
        settlement.functions.grantRole(DISTRIBUTOR_ROLE, acct[DISTRIBUTOR]),
        token.functions.mint(acct[LENDER], 10**13),
        token.functions.mint(acct[DISTRIBUTOR], 10**13),
    ], gas=300_000))  # fmt: skip
    registrar = client.sender(REGISTRAR)
    far = int(client.w3.eth.get_block("latest")["timestamp"]) + 3650 * DAY
    calls = [registry.functions.registerCategory(c) for c in CATEGORIES] + [
        registry.functions.approveMerchant(acct[MERCHANT], category_id(c), far) for c in CATEGORIES
    ]
    registrar.wait(registrar.send_many(calls, gas=300_000))
    lender = client.sender(LENDER)
    lender.transact(token.functions.approve(factory.address, 2**255))
    return _Rig(
        client, token, registry, factory, trace, settlement, LoanDesk(client, factory.address)
    )


# ------------------------------------------------------------------ gas


def _issue(
    rig: _Rig, n: int, fund: bool, mode: ConfirmationMode = ConfirmationMode.IMMEDIATE
) -> tuple[int, str]:
    """Issue loan `n` (its farmer registered and accepting first); returns (gas, escrow)."""
    terms = rig.terms(n, mode)
    rig.register([terms.farmer_id])
    fn = rig.factory.functions.issueAndFundLoan if fund else rig.factory.functions.issueLoan
    receipt = rig.sender(LENDER).transact(fn(terms.params(), rig.accept(terms).as_tuple()), gas=GAS)
    escrow = rig.factory.functions.escrowOf(rig.factory.functions.loanCount().call()).call()
    return int(receipt["gasUsed"]), str(escrow)


def _order(rig: _Rig, escrow: str, amount: int, n: int) -> int:
    """Gas of one fertilizer order for `amount` fen."""
    fn = rig.desk.escrow(escrow).functions.orderPayment(
        rig.addr(MERCHANT), category_id("fertilizer"), amount, keccak(text=f"invoice-{n}")
    )
    return rig.tx(FARMER, fn)


def _measure_issue(rig: _Rig, g: dict[str, int]) -> None:
    """Issuing, funding, and the full-deployment baseline."""
    g["issue"], escrow = _issue(rig, 1, fund=False)
    burner = keccak(text="farmer-burns")
    rig.register([burner])
    burn = rig.factory.functions.burnAcceptanceNonce(burner)
    g["burn"] = rig.tx(FARMER, burn)
    rig.tx(LENDER, rig.token.functions.approve(escrow, 1_000_000))
    g["fund"] = rig.tx(LENDER, rig.desk.escrow(escrow).functions.fund())
    g["issue+fund"], _ = _issue(rig, 2, fund=True)
    artifact = rig.client.artifacts["LoanEscrow"]
    constructor = rig.client.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    g["deploy full escrow"] = int(
        rig.sender(ADMIN).transact(
            constructor.constructor(rig.token.address, rig.registry.address), gas=GAS
        )["gasUsed"]
    )


def _measure_payments(rig: _Rig, g: dict[str, int]) -> None:
    """Immediate payments, reserve/confirm/cancel, return."""
    _, escrow = _issue(rig, 3, fund=True)
    g["pay first"] = _order(rig, escrow, 100_000, 1)
    g["pay later"] = _order(rig, escrow, 100_000, 2)
    _, reserved = _issue(rig, 4, fund=True, mode=ConfirmationMode.MERCHANT_CONFIRMS)
    g["order"] = _order(rig, reserved, 100_000, 3)
    g["confirm"] = rig.tx(MERCHANT, rig.desk.escrow(reserved).functions.confirmPayment(1))
    _order(rig, reserved, 50_000, 4)
    g["cancel"] = rig.tx(FARMER, rig.desk.escrow(reserved).functions.cancelPayment(2))
    rig.client.w3.testing.timeTravel(rig.now() + 31 * DAY)
    g["return"] = rig.tx(ADMIN, rig.desk.escrow(reserved).functions.returnUnspent())


def _measure_repay(rig: _Rig, g: dict[str, int]) -> None:
    """A partial and a final (closing) repayment."""
    _, escrow = _issue(rig, 5, fund=True)
    _order(rig, escrow, 100_000, 5)
    rig.client.w3.testing.timeTravel(rig.now() + 31 * DAY)
    rig.tx(ADMIN, rig.desk.escrow(escrow).functions.returnUnspent())
    e = rig.desk.escrow(escrow).functions
    rig.tx(DISTRIBUTOR, rig.token.functions.approve(escrow, 2**255))
    g["repay"] = rig.tx(DISTRIBUTOR, e.repay(100_000))
    g["repay final"] = rig.tx(DISTRIBUTOR, e.repay(e.outstanding().call()))


def _measure_settlement(rig: _Rig, g: dict[str, int], farmers: int, with_loans: int) -> None:
    """Commit shares and settle a sale for `farmers` farmers, the first `with_loans` indebted."""
    ids = sorted(keccak(text=f"settle-{farmers}-{i}") for i in range(farmers))
    data = keccak(text=f"lot-{farmers}")
    lot = bytes(rig.trace.functions.lotId(rig.addr(COOP), data).call())  # COOP made it
    rig.register(ids)
    rig.tx(ADMIN, rig.trace.functions.setLot(lot, rig.addr(DISTRIBUTOR), 1_000))
    for i, farmer_id in enumerate(ids[:with_loans]):
        terms = rig.terms(1000 * farmers + i, farmer_id=farmer_id)
        fn = rig.factory.functions.issueAndFundLoan(terms.params(), rig.accept(terms).as_tuple())
        rig.tx(LENDER, fn)
        # drawn, so each indebted farmer's share really repays (an undrawn loan owes nothing)
        escrow = rig.factory.functions.activeLoanOf(farmer_id).call()
        _order(rig, escrow, 100_000, 1000 * farmers + i)
    weights = [1_000 + i for i in range(farmers)]
    g[f"commit {farmers}"] = rig.tx(
        COOP, rig.settlement.functions.commitShares(lot, data, ids, weights)
    )
    rig.tx(DISTRIBUTOR, rig.token.functions.approve(rig.settlement.address, 2**255))
    g[f"settle {farmers}/{with_loans}"] = rig.tx(
        DISTRIBUTOR, rig.settlement.functions.settleSale(lot, 10_000_000, ids, weights)
    )


FULL = "deploying a full LoanEscrow instead"
ISSUE_ROW = "issue loan: EIP-1167 clone + terms + 3 budgets + EIP-712 acceptance (unfunded)"


def _gas_table(g: dict[str, int]) -> list[tuple[str, int, int | None, str]]:
    """(name, gas, baseline, baseline name) rows."""
    full = g["deploy full escrow"]
    return [
        (ISSUE_ROW, g["issue"], full, FULL),
        ("farmer burns an acceptance nonce", g["burn"], None, ""),
        ("fund an issued loan (escrow.fund)", g["fund"], None, ""),
        ("issue + accept + fund in one transaction (3 budgets)", g["issue+fund"], None, ""),
        ("merchant payment, immediate (first of the loan)", g["pay first"], None, ""),
        ("merchant payment, immediate (later)", g["pay later"], None, ""),
        ("order reserved (merchant-confirm mode)", g["order"], None, ""),
        ("confirm delivery: release to merchant", g["confirm"], None, ""),
        ("cancel a reserved order", g["cancel"], None, ""),
        ("return unspent to lender", g["return"], None, ""),
        ("repay (partial)", g["repay"], None, ""),
        ("repay (final, closes the loan)", g["repay final"], None, ""),
        ("commit lot shares, 10 farmers", g["commit 10"], None, ""),
        ("settle sale, 3 farmers all with loans", g["settle 3/3"], None, ""),
        ("settle sale, 10 farmers (5 with loans)", g["settle 10/5"], None, ""),
        ("settle sale, 100 farmers (50 with loans)", g["settle 100/50"], None, ""),
    ]  # fmt: skip


def gas_rows() -> list[dict[str, Any]]:
    """Gas per action on a fresh in-process EVM."""
    g: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-disbursement-") as tmp:
        settings = ChainSettings(backend="embedded", data_dir=Path(tmp), mnemonic=DEV_MNEMONIC)
        rig = _rig(ChainClient(settings))
        _measure_issue(rig, g)
        _measure_payments(rig, g)
        _measure_repay(rig, g)
        _measure_settlement(rig, g, 3, 3)
        _measure_settlement(rig, g, 10, 5)
        _measure_settlement(rig, g, 100, 50)
    rows = []
    for name, gas, baseline, baseline_name in _gas_table(g):
        ratio = round(baseline / gas, 1) if baseline else None
        rows.append({
            "benchmark": f"gas: {name}", "value": gas, "unit": "gas",
            "baseline": baseline, "baseline_name": baseline_name, "ratio": ratio,
        })  # fmt: skip
    return rows


# ------------------------------------------------------------------ latency


def _priced_terms(rig: _Rig, n: int) -> EscrowTerms:
    """Application -> decision: schedule, APR disclosure and cap check, then EscrowTerms."""
    offer = Offer(
        principal_fen=1_000_000,
        annual_rate=800,
        term_months=12,
        kind=ScheduleKind.SEASONAL,
        start=datetime.now(UTC).date(),
    )
    # Priced today: on the LPR table assumed unchanged through today (a labelled assumption).
    disclosure = disclose(offer, table=load_lpr_table().assuming_unchanged_through(offer.start))
    return EscrowTerms.from_disclosure(
        disclosure,
        farmer_id=_latency_farmer(n),
        farmer=rig.addr(FARMER),
        lender=rig.addr(LENDER),
        budgets_fen=BUDGETS,
        draw_deadline=rig.now() + 30 * DAY,
        grace_days=10,
        agent=rig.addr(COOP),
    )


def _latency_farmer(n: int) -> bytes:
    """Application `n`'s farmer id."""
    return keccak(text=f"latency-farmer-{n}")


def _one_application(rig: _Rig, n: int, pipelined: bool) -> tuple[float, float]:
    """Seconds from receiving application `n` to the first merchant's payment receipt, and the
    part of it spent pricing the offer."""
    start = time.perf_counter()
    terms = _priced_terms(rig, n)
    priced = time.perf_counter()
    merchant, invoice = rig.addr(MERCHANT), keccak(text=f"latency-invoice-{n}")
    lender, farmer = rig.sender(LENDER), rig.sender(FARMER)
    accepted = rig.accept(terms)  # the farmer signs the disclosed terms (no transaction)
    if pipelined:
        result = rig.desk.disburse_first_payment(
            terms, accepted, lender, farmer, merchant, "fertilizer", 120_000, invoice
        )
        assert result.order.paid and result.pipelined, "the order had to be resent"
    else:
        loan = rig.desk.issue(terms, lender, accepted)
        assert rig.desk.order_payment(
            loan.escrow, merchant, "fertilizer", 120_000, invoice, farmer
        ).paid
    return time.perf_counter() - start, priced - start


def latency_rows(loans: int = LOANS) -> list[dict[str, Any]]:
    """Application-to-first-merchant-paid latency on a fresh anvil (pipelined vs sequential)."""
    with tempfile.TemporaryDirectory(prefix="bench-disbursement-anvil-") as tmp:
        node = AnvilNode(Path(tmp), PROJECT_ROOT, free_port(), DEV_MNEMONIC, accounts=10)
        node.start()
        try:
            settings = ChainSettings(
                backend="anvil", port=node.port, data_dir=Path(tmp), mnemonic=DEV_MNEMONIC
            )
            rig = _rig(ChainClient(settings, node))
            rig.register([_latency_farmer(i) for i in range(2 * loans + 1)])
            _one_application(rig, 0, pipelined=True)  # warm caches (LPR table, ABI codecs)
            piped = [_one_application(rig, i, True) for i in range(1, loans + 1)]
            plain = [_one_application(rig, i, False) for i in range(loans + 1, 2 * loans + 1)]
        finally:
            node.stop()
    p50 = statistics.median(t for t, _ in piped) * 1000
    p50_plain = statistics.median(t for t, _ in plain) * 1000
    pricing = statistics.median(p for _, p in piped) * 1000
    worst = max(t for t, _ in piped) * 1000
    return [
        {
            "benchmark": f"application -> first merchant paid, anvil, pipelined (p50 of {loans})",
            "value": round(p50, 1), "unit": "ms",
            "baseline": round(p50_plain, 1), "ratio": round(p50_plain / p50, 2),
        },
        {
            "benchmark": f"application -> first merchant paid, anvil, pipelined (max of {loans})",
            "value": round(worst, 1), "unit": "ms", "baseline": None, "ratio": None,
        },
        {
            "benchmark": "  of which pricing: schedule + APR disclosure + cap check (p50)",
            "value": round(pricing, 1), "unit": "ms", "baseline": None, "ratio": None,
        },
    ]  # fmt: skip


def run() -> list[dict[str, Any]]:
    """Gas rows (in-process EVM), then latency rows (anvil)."""
    return gas_rows() + latency_rows()


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| benchmark | value | unit | baseline | baseline / value |",
        "|---|---:|---|---:|---:|",
    ]
    for r in rows:
        base = "-" if r.get("baseline") is None else f"{r['baseline']:,}"
        if r.get("baseline_name"):
            base += f" ({r['baseline_name']})"
        ratio = f"{r['ratio']}x" if r.get("ratio") else "-"
        lines.append(f"| {r['benchmark']} | {r['value']:,} | {r['unit']} | {base} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(run()))
