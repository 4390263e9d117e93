"""`tealedger demo`, lending stage: the season's credit, from consent to repayment or default.

After the season (tealedger.demo.season) a seeded share of farmers applies for a purpose-bound
inputs loan (winter base fertilizer, seedlings, pruning crews, machines). Each applicant gets a
wallet of its own, grants the lender consent by a relayed EIP-712 signature, and is scored on
the indexed profile; approved farmers borrow what their input plan needs (up to the limit) into
an escrow that pays approved merchants only. The distributor still owes the lots of the autumn
flush's last two weeks (45-day payment terms); it pays them through SaleSettlement, where each
farmer's share repays the loan first. What the proceeds leave outstanding the farmer repays
from its wallet: most before the due date, a few only after the grace period (late payers), and
some never (the lender declares default). Escrows run on block time, so on development chains
the stage moves the chain's clock forward (evm_increaseTime + evm_mine) to each date it needs;
see docs/demo.md.

Every step first asks the chain or the database what is done (deterministic wallets, invoice
hashes and CREATE2 escrow addresses; one decision per farmer, lender and season in the credit
store), so re-running continues where the last run stopped and never duplicates anything.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from rich.console import Console
from rich.progress import Progress
from web3.types import TxReceipt

from chain.client import ChainClient
from chain.errors import ChainError
from chain.sender import PendingTx, Sender
from indexer.db import make_engine
from lending.credit.decision import DecisionRecord, decide
from lending.credit.features import CHINA_TZ
from lending.credit.policy import Outcome
from lending.credit.profiles import IndexedConsentChecker, IndexedProfileReader
from lending.credit.scorecard import load_model
from lending.credit.store import CreditStore
from lending.loans.contracts import DEV_LENDER, DEV_REGISTRAR
from lending.loans.disbursement import (
    ORDER_GAS,
    EscrowTerms,
    LoanDesk,
    LoanState,
    LoanStatus,
    document_hash,
)
from lending.loans.errors import LoanTermsError
from lending.loans.gas import RETURN_UNSPENT_GAS, commit_gas, issue_gas, settle_gas
from lending.loans.merchants import MerchantDesk
from lending.loans.settlement import (
    FarmerShare,
    SettlementDesk,
    normalize_shares,
    shares_hash,
    split_amount,
)
from lending.pricing.disclosure import Disclosure, disclose
from lending.pricing.lpr import LprTable, load_lpr_table
from lending.pricing.schedule import ScheduleTerms
from simulation.season import FLUSHES, Farmer
from tealedger.demo.season import (
    BATCH,
    BUYER,
    COOPERATIVE_ACCOUNTS,
    DISTRIBUTOR,
    PROCESSOR,
    Region,
    SeasonSummary,
    latest_full_season,
    progress_bars,
)
from tealedger.demo.service import index_chain
from traceability import contracts
from traceability.consent import ConsentService
from traceability.lineage import LineageReader
from traceability.service import RecordingService
from traceability.weights import LeafFlow, LeafLot, MassStep

ADMIN = 0  # holds PaymentToken's minter role on development chains
DAY = 86_400
APPLY_SHARE = 0.35
DRAW_DAYS = 30
GRACE_DAYS = 15
DEFAULT_DAYS = 60
OWED_DAYS = 14
"""The distributor still owes the lots of the autumn flush's last 14 days (45-day terms)."""
SETTLE_AFTER_DRAW_DAYS = 15
LATE_DAYS = 20
"""Late payers repay this many days after their grace period ended."""
CONSENT_DAYS = 700  # below ConsentRegistry's 730-day maximum, beyond every date the stage uses
APPROVAL_DAYS = 730
LATE_SHARE = 0.20
DEFAULT_SHARE = 0.08
"""Of the borrowers whose sale proceeds leave something outstanding: late and defaulting."""
GAS_WEI = 10**16
"""Development ether given to a farmer's wallet before it repays (the platform pays the gas)."""
REPAID = LoanStatus.REPAID


class TimeTravelError(ChainError):
    """The chain's clock cannot be moved (not a development chain)."""


class Behaviour(StrEnum):
    """How a borrower repays what its sale proceeds left outstanding."""

    ON_TIME = "on time"
    LATE = "late"
    DEFAULT = "default"


@dataclass(frozen=True)
class Merchant:
    """An approved supplier of one category; a dev account, or an address derived from the name."""

    name: str
    category: str
    account: int | None = None


MERCHANTS = (
    Merchant("Fertilizer supplier 农资店", "fertilizer", DEV_REGISTRAR),  # the demo's login
    Merchant("Enshi agricultural inputs 恩施农资公司", "fertilizer"),
    Merchant("Xuan'en tea seedling nursery 宣恩茶苗基地", "seedlings"),
    Merchant("Bashan pruning and picking team 巴山修剪采摘队", "labour service"),
    Merchant("Hubei farm machinery 湖北农机", "equipment"),
)


@dataclass(frozen=True)
class Invoice:
    """A merchant's invoice paid from a loan (its hash is the escrow's idempotency key)."""

    category: str
    merchant: str
    amount_fen: int
    invoice_hash: bytes


@dataclass
class Loan:
    """One applicant's way through the season's credit."""

    index: int
    farmer_id: bytes
    wallet: LocalAccount
    agent: int
    needs_fen: dict[str, int]
    record: DecisionRecord | None = None
    disclosure: Disclosure | None = None
    terms: EscrowTerms | None = None
    escrow: str | None = None
    invoices: list[Invoice] = field(default_factory=list)
    behaviour: Behaviour = Behaviour.ON_TIME


@dataclass(frozen=True)
class OwedLot:
    """A sold lot the distributor pays through SaleSettlement, with its committed shares."""

    lot: bytes
    amount_fen: int
    shares: tuple[FarmerShare, ...]


@dataclass
class LendingSummary:
    """What the lending stage put on chain (this run and before); money in fen."""

    applicants: int = 0
    approved: int = 0
    referred: int = 0
    declined: int = 0
    loans: int = 0
    lent_fen: int = 0
    paid_to_merchants_fen: int = 0
    returned_fen: int = 0
    repaid_fen: int = 0
    repaid_from_sales_fen: int = 0
    outstanding_fen: int = 0
    late_payers: int = 0
    defaults: int = 0
    lots_settled: int = 0
    sales_settled_fen: int = 0
    new_transactions: int = 0
    gas_used: int = 0
    days_advanced: Decimal = Decimal(0)
    chain_time: int = 0
    seconds: float = 0.0

    @property
    def default_rate(self) -> Decimal:
        """Defaulted loans over loans issued, in percent (two places)."""
        if not self.loans:
            return Decimal(0)
        return (Decimal(100 * self.defaults) / self.loans).quantize(Decimal("0.01"))

    def rows(self) -> list[tuple[str, str]]:
        """(figure, value) rows for the demo's summary table."""
        return [
            ("loan applications", f"{self.applicants:,}"),
            ("  approved / referred / declined",
             f"{self.approved:,} / {self.referred:,} / {self.declined:,}"),
            ("loans issued", f"{self.loans:,}"),
            ("amount lent", _yuan(self.lent_fen)),
            ("paid to merchants", _yuan(self.paid_to_merchants_fen)),
            ("returned unspent", _yuan(self.returned_fen)),
            ("sales settled", f"{self.lots_settled:,} lots, {_yuan(self.sales_settled_fen)}"),
            ("repaid", _yuan(self.repaid_fen)),
            ("  from sale proceeds", _yuan(self.repaid_from_sales_fen)),
            ("late payers", f"{self.late_payers:,}"),
            ("defaults", f"{self.defaults:,} ({self.default_rate}%), "
                         f"{_yuan(self.outstanding_fen)} outstanding"),
            ("chain clock", _day(self.chain_time)
             + (f" (moved {self.days_advanced:,.1f} days this run)" if self.days_advanced else "")),
        ]  # fmt: skip


def _yuan(fen: int) -> str:
    """Fen as yuan text, exact."""
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def _day(timestamp: int) -> str:
    """A unix time as a UTC date."""
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat() if timestamp else "-"


# ---------------------------------------------------------------------------------- the run


@dataclass
class LendingRun:
    """Handles shared by the steps: chain, desks, credit store, the season and the tally."""

    client: ChainClient
    region: Region
    made_lots: list[bytes]
    database_url: str
    progress: Progress
    summary: LendingSummary = field(default_factory=LendingSummary)
    loans: list[Loan] = field(default_factory=list)
    owed: list[OwedLot] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.desk = LoanDesk(self.client)
        from_block = contracts.deployment_block(self.client)
        self.trace_block = from_block
        self.sales = SettlementDesk(self.client, from_block=from_block)
        self.store = CreditStore(make_engine(self.database_url, snapshots=False))
        self.lender = self.client.sender(DEV_LENDER)

    @property
    def issued(self) -> list[Loan]:
        """Loans that exist on chain."""
        return [loan for loan in self.loans if loan.escrow is not None]

    def mined(self, receipts: Sequence[TxReceipt]) -> list[TxReceipt]:
        """Account for mined transactions."""
        self.summary.gas_used += sum(r["gasUsed"] for r in receipts)
        self.summary.new_transactions += len(receipts)
        return list(receipts)

    def send(
        self,
        sender: Sender,
        calls: Sequence[Any],
        task: Any = None,
        gas: Sequence[int | None] | None = None,
    ) -> list[TxReceipt]:
        """Pipeline independent calls of one sender in batches (with measured gas limits where
        given, else estimated), then wait for them."""
        limits = list(gas) if gas is not None else [None] * len(calls)
        receipts: list[TxReceipt] = []
        for start in range(0, len(calls), BATCH):
            chunk = zip(calls[start : start + BATCH], limits[start : start + BATCH], strict=True)
            fees = sender.fees()
            pending = [sender.send(call, gas=limit, fees=fees) for call, limit in chunk]
            receipts += self.mined(sender.wait(pending))
            if task is not None:
                self.progress.advance(task, len(pending))
        return receipts

    def send_each(self, pairs: Sequence[tuple[Sender, Any]], task: Any = None) -> None:
        """Pipeline calls of many senders (each sender's in order), then wait for all."""
        pending: list[tuple[Sender, PendingTx]] = [(s, s.send(call)) for s, call in pairs]
        for sender, tx in pending:
            self.mined(sender.wait([tx]))
            if task is not None:
                self.progress.advance(task)

    def advance_to(self, target: int) -> None:
        """Move the chain's clock to `target` if it is earlier (development chains)."""
        self.summary.days_advanced += Decimal(advance_to(self.client, target)) / DAY

    def states(self, loans: Iterable[Loan]) -> dict[int, LoanState]:
        """Escrow states by farmer index."""
        return {loan.index: self.desk.state(loan.escrow) for loan in loans if loan.escrow}


def run_lending(
    client: ChainClient,
    region: Region,
    season: SeasonSummary,
    database_url: str,
    console: Console,
) -> LendingSummary:
    """Run the season's lending on chain (idempotently); returns the tally read from chain."""
    started = time.perf_counter()
    with progress_bars(console) as progress:
        run = LendingRun(client, region, season.made_lots, database_url, progress)
        _steps(run)
    run.summary.seconds = time.perf_counter() - started
    return run.summary


def _steps(run: LendingRun) -> None:
    """The stage's steps, in chain-time order."""
    client, region = run.client, run.region
    run.loans = applications(region)
    run.summary.applicants = len(run.loans)
    link_wallets(run)
    grant_consents(run)
    score_applications(run)
    issue_loans(run)
    pay_merchants(run)
    close_draw_window(run)
    run.owed = owed_lots(client, region, run.made_lots)
    assign_behaviours(run.loans, run.owed, region.season.seed)
    settle_sales(run)
    repay_on_time(run)
    mark_overdue(run)
    repay_late(run)
    declare_defaults(run)
    tally(run)


# ---------------------------------------------------------------------------------- time


def chain_now(client: ChainClient) -> int:
    """The latest block's timestamp."""
    return int(client.w3.eth.get_block("latest")["timestamp"])


def advance_to(client: ChainClient, target: int) -> int:
    """Mine a block dated `target` or later on a development chain; returns seconds moved.

    ganache and anvil forget a time offset when they restart, so the clock may be behind the
    latest block; the loop measures each step instead of trusting one increment.
    """
    start = chain_now(client)
    if start >= target:
        return 0
    backend = client.settings.backend
    if backend == "embedded":
        client.w3.testing.timeTravel(target)  # type: ignore[attr-defined]
    elif backend in ("ganache", "anvil"):
        for _ in range(4):
            now = chain_now(client)
            if now >= target:
                break
            _rpc(client, "evm_increaseTime", [target - now])
            _rpc(client, "evm_mine", [])
    else:
        raise TimeTravelError(
            f"the demo's loans need the chain's clock moved to {_day(target)}, which only a "
            "development chain (embedded, ganache, anvil) allows; run the demo on one of those"
        )
    now = chain_now(client)
    if now < target:
        raise TimeTravelError(f"{backend} did not move its clock to {target} (it is at {now})")
    return now - start


def _rpc(client: ChainClient, method: str, params: list[Any]) -> Any:
    """A raw JSON-RPC call; an error answer raises."""
    reply = client.w3.provider.make_request(method, params)  # type: ignore[arg-type]
    if "error" in reply:
        raise TimeTravelError(f"{method} failed: {reply['error']}")
    return reply.get("result")


# ---------------------------------------------------------------------------------- plans


def demo_key(label: str) -> LocalAccount:
    """A development key derived from public text (demo wallets and merchants: never real funds)."""
    return Account.from_key(keccak(text=f"tealedger-demo:{label}"))


def farmer_wallet(farmer_id: bytes) -> LocalAccount:
    """The wallet a demo farmer opens (its own e-CNY wallet)."""
    return demo_key(f"wallet:{farmer_id.hex()}")


def merchant_address(client: ChainClient, merchant: Merchant) -> str:
    """Where a merchant is paid."""
    if merchant.account is not None:
        return str(client.accounts[merchant.account].address)
    return str(demo_key(f"merchant:{merchant.name}").address)


def input_needs(rng: random.Random, farmer: Farmer) -> dict[str, int]:
    """A farmer's input plan for the coming year by category, in whole yuan as fen."""
    mu = Decimal(farmer.area_centi_mu) / 100
    needs = {"fertilizer": mu * rng.randint(450, 700)}  # base fertilizer and top dressing
    if rng.random() < 0.35:  # replanting a tenth to a third of the garden, ~3,000 seedlings/mu
        needs["seedlings"] = mu * Decimal(rng.randint(10, 30)) / 100 * 3_000
    if rng.random() < 0.5:  # a pruning crew
        needs["labour service"] = mu * rng.randint(150, 300)
    if rng.random() < 0.2:  # a pruning machine
        needs["equipment"] = Decimal(rng.randint(1_800, 3_500))
    return {k: int(v) * 100 for k, v in needs.items() if int(v) > 0}


def applications(region: Region) -> list[Loan]:
    """The seeded share of farmers who apply, with their wallets and input plans."""
    season = region.season
    rng = random.Random(f"{season.seed}:lending:apply")
    loans = []
    for index, farmer in enumerate(season.farmers):
        applies = rng.random() < APPLY_SHARE
        plan = input_needs(random.Random(f"{season.seed}:lending:needs:{index}"), farmer)
        if applies:
            fid, agent = region.farmer_ids[index], _cooperative(farmer.cooperative)
            loans.append(Loan(index, fid, farmer_wallet(fid), agent, plan))
    return loans


def scale_budgets(needs: dict[str, int], principal: int) -> dict[str, int]:
    """Budgets adding up to exactly `principal`, in proportion to the needs (whole fen)."""
    total = sum(needs.values())
    budgets = {k: v * principal // total for k, v in needs.items()}
    first = max(budgets, key=lambda k: budgets[k])
    budgets[first] += principal - sum(budgets.values())
    return {k: v for k, v in budgets.items() if v > 0}


def spending(client: ChainClient, loan: Loan, budgets: dict[str, int], year: int) -> list[Invoice]:
    """The invoices the farmer's cooperative pays from the loan: 85-100% of each budget."""
    rng = random.Random(f"{year}:lending:invoices:{loan.farmer_id.hex()}")
    invoices = []
    for category in sorted(budgets):
        sellers = [m for m in MERCHANTS if m.category == category]
        spend = budgets[category] * rng.randint(85, 100) // 100
        parts = 2 if category == "fertilizer" and spend >= 200_000 else 1
        for k in range(parts):
            amount = spend // parts + (spend % parts if k == 0 else 0)
            merchant = merchant_address(client, rng.choice(sellers))
            reference = f"INV-{year}-{loan.farmer_id.hex()[:12]}-{category}-{k}"
            digest = document_hash({"invoice": reference, "merchant": merchant, "fen": amount})
            invoices.append(Invoice(category, merchant, amount, digest))
    return [i for i in invoices if i.amount_fen > 0]


def offer(record: DecisionRecord, needs: dict[str, int]) -> Disclosure:
    """The disclosure of what the farmer borrows: its needs, within the limit and minimum."""
    d = record.decision
    product = d.policy.product
    principal = min(max(sum(needs.values()), product.min_limit_fen), d.limit_fen)
    rate = d.pricing.offered_rate_bps if d.pricing else None
    if rate is None:
        raise LoanTermsError(f"decision {record.decision_id} has no offered rate to lend at")
    terms = ScheduleTerms(
        principal_fen=principal,
        annual_rate=rate,
        term_months=product.term_months,
        kind=product.kind,
        start=d.contract_date,
        upfront_fee_fen=principal * product.upfront_fee_bps // 10_000,
        grace_months=product.grace_months,
        penalty_rate_bps=product.penalty_rate_bps,
    )
    return disclose(terms, d.policy.cap_policy(), demo_lpr_table(d.contract_date))


def demo_lpr_table(on: date) -> LprTable:
    """The LPR table, assumed unchanged through `on` if it ends before: the demo only.

    The demo prices on its chain's date (today, or later once it moved the clock); real
    pricing refuses a table that ends before the contract date. The assumption is named in the
    table's version, so every disclosure priced with it says so, and it is written nowhere.
    """
    return load_lpr_table().assuming_unchanged_through(on)


def season_of_contract(day: date) -> int:
    """The season a lending round belongs to (the last full season before the contract date)."""
    return latest_full_season(datetime(day.year, day.month, day.day, tzinfo=UTC))


# ---------------------------------------------------------------------------------- steps


def link_wallets(run: LendingRun) -> None:
    """Each cooperative points its members' TeaTrace wallets at wallets of their own.

    The season registered every farmer with one of two shared development accounts (the
    lender's and a merchant's); proceeds and consent must be the farmer's own.
    """
    season, ids = run.region.season, run.region.farmer_ids
    services = [RecordingService(run.client, _cooperative(c)) for c in range(season.cooperatives)]
    reader = services[0]
    todo = [
        i for i, fid in enumerate(ids) if reader.farmer(fid).wallet != farmer_wallet(fid).address
    ]
    task = run.progress.add_task("farmer wallets", total=len(ids))
    run.progress.advance(task, len(ids) - len(todo))
    for coop, service in enumerate(services):
        calls = [
            service.set_farmer_wallet_call(ids[i], farmer_wallet(ids[i]).address)
            for i in todo
            if season.farmers[i].cooperative == coop
        ]
        run.send(service.sender, calls, task)


def _cooperative(coop: int) -> int:
    """The dev account of a demo cooperative (which registered its members)."""
    return COOPERATIVE_ACCOUNTS[coop % len(COOPERATIVE_ACCOUNTS)]


def grant_consents(run: LendingRun) -> None:
    """Applicants sign consent for the lender; their cooperative relays it (EIP-712)."""
    service = ConsentService(run.client)
    lender = run.lender.address
    now = chain_now(run.client)
    todo = [loan for loan in run.loans if service.expiry(loan.farmer_id, lender) <= now]
    task = run.progress.add_task("consents to the lender", total=len(run.loans))
    run.progress.advance(task, len(run.loans) - len(todo))
    expires = now + CONSENT_DAYS * DAY
    for agent in sorted({loan.agent for loan in todo}):
        calls = []
        for loan in (x for x in todo if x.agent == agent):
            deadline, signature = service.sign_grant(
                loan.wallet, loan.farmer_id, lender, expires, deadline=now + 3_600
            )
            calls.append(
                service.relay_grant_call(loan.farmer_id, lender, expires, deadline, signature)
            )
        run.send(run.client.sender(agent), calls, task)


def score_applications(run: LendingRun) -> None:
    """Index the chain, then score every applicant once per season and store the decision."""
    task = run.progress.add_task("index, then credit decisions", total=len(run.loans) + 1)
    index_chain(run.client, run.database_url)
    run.progress.advance(task)
    reader = IndexedProfileReader(run.database_url)
    consent = IndexedConsentChecker(run.database_url)
    model = load_model()
    lender = run.lender.address.lower()
    at = datetime.fromtimestamp(chain_now(run.client), UTC)
    table = demo_lpr_table(at.astimezone(CHINA_TZ).date())
    if table.assumed:
        run.progress.console.print(
            f"[yellow]assumption:[/] the LPR table ends on {load_lpr_table().covers_through}; "
            f"the demo prices as if the 1-year LPR stayed {table.fixings[-1].rate_pct}% through "
            f"{table.covers_through} (table {table.version}). Real pricing refuses this: record "
            "the published fixings with `tealedger lpr update`",
            highlight=False,
        )
    year = run.region.season.year
    for loan in run.loans:
        fid = "0x" + loan.farmer_id.hex()
        earlier = [
            r
            for r in run.store.decisions_for(fid)
            if r.lender == lender and season_of_contract(r.decision.contract_date) == year
        ]
        loan.record = earlier[-1] if earlier else decide(
            fid, lender, profiles=reader, consent=consent, access_log=run.store, model=model,
            store=run.store, now=at, lpr_table=table,
        )  # fmt: skip
        run.progress.advance(task)
    outcomes = [loan.record.decision.outcome for loan in run.loans if loan.record]
    run.summary.approved = outcomes.count(Outcome.APPROVE)
    run.summary.referred = outcomes.count(Outcome.REFER)
    run.summary.declined = outcomes.count(Outcome.DECLINE)


def _plan_loan(run: LendingRun, loan: Loan) -> None:
    """The loan's disclosure, escrow terms and invoices (deterministic from the decision).

    The draw window runs DRAW_DAYS from the decision, which is also how long the offer stands.
    """
    assert loan.record is not None
    draw_deadline = int(loan.record.decided_at.timestamp()) + DRAW_DAYS * DAY
    loan.disclosure = offer(loan.record, loan.needs_fen)
    budgets = scale_budgets(loan.needs_fen, loan.disclosure.amount_financed_fen)
    loan.terms = EscrowTerms.from_disclosure(
        loan.disclosure,
        farmer_id=loan.farmer_id,
        farmer=loan.wallet.address,
        lender=run.lender.address,
        budgets_fen=budgets,
        draw_deadline=draw_deadline,
        grace_days=GRACE_DAYS,
        default_days=DEFAULT_DAYS,
        agent=run.client.accounts[loan.agent].address,
    )
    loan.invoices = spending(run.client, loan, budgets, run.region.season.year)


def issue_loans(run: LendingRun) -> None:
    """Approved applicants' loans, accepted by each farmer's (demo) wallet signature, then
    issued and funded in one transaction each."""
    now = chain_now(run.client)
    approved = [x for x in run.loans if x.record and x.record.decision.outcome is Outcome.APPROVE]
    todo = []
    for loan in approved:
        _plan_loan(run, loan)
        assert loan.terms is not None and loan.record is not None
        escrow = run.desk.predict_escrow(loan.terms)
        if run.client.w3.eth.get_code(escrow):
            loan.escrow = escrow
        elif _may_issue(run, loan, now):
            todo.append(loan)
    task = run.progress.add_task("loans issued", total=len(approved))
    run.progress.advance(task, len(approved) - len(todo))
    if not todo:
        return
    total = sum(loan.terms.principal_fen for loan in todo if loan.terms)
    _fund(run, run.lender, total, run.desk.factory.address)
    terms = [x.terms for x in todo if x.terms]
    # DEMO ONLY: each farmer accepts the disclosed terms with its own development wallet,
    # signed here for it; a real farmer signs the typed data in their own wallet app
    # (GET /farmers/me/offers/{id}, then POST .../acceptance). No gas: the lender relays.
    deadline = run.desk.acceptance_deadline()
    accepted = [
        run.desk.sign_acceptance(x.terms, x.wallet, deadline=deadline) for x in todo if x.terms
    ]
    calls = [run.desk.issue_call(t, a) for t, a in zip(terms, accepted, strict=True)]
    run.send(run.lender, calls, task, gas=[issue_gas(len(t.budgets_fen)) for t in terms])
    for loan in todo:
        assert loan.terms is not None
        loan.escrow = run.desk.predict_escrow(loan.terms)


def _may_issue(run: LendingRun, loan: Loan, now: int) -> bool:
    """An offer still standing (a day of its draw window left), no other open loan."""
    assert loan.terms is not None
    fresh = now + DAY < loan.terms.draw_deadline
    return fresh and run.desk.active_loan_of(loan.farmer_id) is None


def _fund(run: LendingRun, holder: Sender, amount: int, spender: str) -> None:
    """Mint the holder's shortfall of `amount` (development eCNY) and approve `spender` for it."""
    desk = run.desk
    balance = desk.balance_of(holder.address)
    admin = run.client.sender(ADMIN)
    if balance < amount:
        run.mined([admin.transact(desk.mint_call(holder.address, amount - balance))])
    if desk.allowance(holder.address, spender) < amount:
        run.mined([holder.transact(desk.approve_call(spender, amount))])


def pay_merchants(run: LendingRun) -> None:
    """Approve the merchants per category, then each cooperative pays its members' invoices."""
    approve_merchants(run)
    now = chain_now(run.client)
    states = run.states(run.issued)
    pairs = []
    done = 0
    for loan in run.issued:
        state = states[loan.index]
        for invoice in loan.invoices:
            if run.desk.invoice_used(state.escrow, invoice.invoice_hash):
                done += 1
            elif state.status is LoanStatus.ACTIVE and now <= state.draw_deadline:
                fn = run.desk.order_call(
                    state.escrow, invoice.merchant, invoice.category, invoice.amount_fen,
                    invoice.invoice_hash,
                )  # fmt: skip
                pairs.append((run.client.sender(loan.agent), fn))
    task = run.progress.add_task("merchant payments", total=done + len(pairs))
    run.progress.advance(task, done)
    for agent in sorted({s.address for s, _ in pairs}):
        mine = [call for s, call in pairs if s.address == agent]
        sender = next(s for s, _ in pairs if s.address == agent)
        run.send(sender, mine, task, gas=[ORDER_GAS] * len(mine))


def approve_merchants(run: LendingRun) -> None:
    """The registrar approves each demo merchant for its category (two years)."""
    registry = MerchantDesk(run.client)
    until = chain_now(run.client) + APPROVAL_DAYS * DAY
    calls = [
        registry.approve_call(address, m.category, until)
        for m in MERCHANTS
        if not registry.is_approved(address := merchant_address(run.client, m), m.category)
    ]
    run.send(run.client.sender(DEV_REGISTRAR), calls)


def close_draw_window(run: LendingRun) -> None:
    """After the draw window, the lender takes back what the farmers did not spend."""
    states = run.states(run.issued)
    todo = [s for s in states.values() if s.available_fen > 0 and s.status is LoanStatus.ACTIVE]
    task = run.progress.add_task("unspent returned", total=len(todo))
    if not todo:
        return
    run.advance_to(max(s.draw_deadline for s in todo) + 1)
    calls = [run.desk.return_unspent_call(s.escrow) for s in todo]
    run.send(run.lender, calls, task, gas=[RETURN_UNSPENT_GAS] * len(calls))


# ---------------------------------------------------------------------------------- sales


def owed_lots(client: ChainClient, region: Region, made_lots: list[bytes]) -> list[OwedLot]:
    """Sold lots of the autumn flush's last OWED_DAYS days, with shares from lineage."""
    season = region.season
    (month, day) = FLUSHES["autumn"][1]
    first = date(season.year, month, day) - timedelta(days=OWED_DAYS - 1)
    made = iter(made_lots)
    candidates: list[tuple[bytes, int, int]] = []  # (lot, batch, grams)
    for n, batch in enumerate(season.batches):
        for grams in batch.outputs_grams:
            lot = next(made)
            if batch.flush == "autumn" and batch.day >= first:
                candidates.append((lot, n, grams))
    views = RecordingService(client, PROCESSOR).lots([lot for lot, _, _ in candidates])
    buyer = client.accounts[BUYER].address
    sold = [c for c, v in zip(candidates, views, strict=True) if v.holder == buyer]
    flow = _lineage(region, made_lots, {n for _, n, _ in sold})
    return [
        OwedLot(
            lot,
            season.batches[n].price_fen_per_kg * grams // 1000,
            normalize_shares(flow.weights(lot)),
        )
        for lot, n, grams in sold
    ]


def _lineage(region: Region, made_lots: list[bytes], batches: set[int]) -> LeafFlow:
    """Harvests and processing steps of the given batches (as recorded on chain), in memory."""
    season = region.season
    harvests, steps = [], []
    made = iter(made_lots)
    for n, batch in enumerate(season.batches):
        outputs = tuple((next(made), g) for g in batch.outputs_grams)
        if n not in batches:
            continue
        inputs = tuple(region.lot_ids[i] for i in batch.harvests)
        for i in batch.harvests:
            h = season.harvests[i]
            harvests.append(LeafLot(region.lot_ids[i], region.farmer_ids[h.farmer], h.grams))
        steps.append(MassStep(n.to_bytes(32, "big"), inputs, outputs))
    return LeafFlow(harvests, steps)


def expected_proceeds(owed: Sequence[OwedLot]) -> dict[bytes, int]:
    """Each farmer's share of the owed lots, split exactly as SaleSettlement splits them."""
    totals: dict[bytes, int] = {}
    for lot in owed:
        parts = split_amount(lot.amount_fen, [s.weight for s in lot.shares])
        for share, fen in zip(lot.shares, parts, strict=True):
            totals[share.farmer_id] = totals.get(share.farmer_id, 0) + fen
    return totals


def assign_behaviours(loans: Sequence[Loan], owed: Sequence[OwedLot], seed: int) -> None:
    """Seeded repayment behaviour of the borrowers whose proceeds will not cover the loan.

    At least one late payer and one default when two or more such borrowers exist, so the demo
    always shows every path; the rest are drawn at LATE_SHARE and DEFAULT_SHARE.
    """
    proceeds = expected_proceeds(owed)
    short = [x for x in loans if x.terms and _remainder(x, proceeds.get(x.farmer_id, 0)) > 0]
    rng = random.Random(f"{seed}:lending:repayment")
    for loan in short:
        draw = rng.random()
        late = draw < LATE_SHARE
        loan.behaviour = Behaviour.LATE if late else Behaviour.ON_TIME
        if draw > 1 - DEFAULT_SHARE:
            loan.behaviour = Behaviour.DEFAULT
    if len(short) < 2:
        return
    for wanted in (Behaviour.DEFAULT, Behaviour.LATE):
        on_time = [x for x in short if x.behaviour is Behaviour.ON_TIME]
        if on_time and all(x.behaviour is not wanted for x in short):
            rng.choice(on_time).behaviour = wanted


def _remainder(loan: Loan, proceeds: int) -> int:
    """What the planned spending and interest leave after the farmer's sale proceeds."""
    assert loan.terms is not None
    interest = loan.terms.total_due_fen - loan.terms.principal_fen
    return interest + sum(i.amount_fen for i in loan.invoices) - proceeds


def settle_sales(run: LendingRun) -> None:
    """The processor commits each owed lot's shares; the distributor pays the lots."""
    status = {o.lot: run.sales.commitment(o.lot) for o in run.owed}
    settle = [o for o in run.owed if status[o.lot].sales == 0]
    commit = [o for o in settle if status[o.lot].shares_hash != _hash(o)]
    task = run.progress.add_task("sales settled", total=len(run.owed) + len(commit))
    run.progress.advance(task, len(run.owed) - len(settle))
    if not settle:
        return
    if run.issued:  # the distributor pays on 45-day terms: after the draw window
        deadline = max(run.desk.state(x.escrow).draw_deadline for x in run.issued if x.escrow)
        run.advance_to(deadline + SETTLE_AFTER_DRAW_DAYS * DAY)
    committer = run.client.sender(PROCESSOR)
    made = run.region.made_data  # the processor made the lots: it proves so with their data
    commits = [run.sales.commit_shares_call(o.lot, made[o.lot], o.shares) for o in commit]
    run.send(committer, commits, task, gas=[commit_gas(len(o.shares)) for o in commit])
    check = settle[0].lot  # one lot's lineage read back from TeaTrace's events, as anyone can
    weights = LineageReader.from_client(run.client).farmer_weights(check)
    if not run.sales.verify_committed(check, weights):
        raise ChainError(f"lot 0x{check.hex()}: committed shares differ from lineage")
    distributor = run.client.sender(DISTRIBUTOR)
    _fund(run, distributor, sum(o.amount_fen for o in settle), run.sales.contract.address)
    calls = [run.sales.settle_sale_call(o.lot, o.amount_fen, o.shares) for o in settle]
    # Open loans of any season (a defaulted one stays open) take the costlier repaying path.
    farmers = {s.farmer_id for o in settle for s in o.shares}
    borrowers = {f for f in farmers if run.desk.active_loan_of(f) is not None}
    owing = [sum(s.farmer_id in borrowers for s in o.shares) for o in settle]
    limits = [settle_gas(len(o.shares), n) for o, n in zip(settle, owing, strict=True)]
    run.send(distributor, calls, task, gas=limits)


def _hash(lot: OwedLot) -> bytes:
    """The shares hash SaleSettlement stores for the lot."""
    return shares_hash(lot.shares)


# ---------------------------------------------------------------------------------- repayment


def _open(run: LendingRun, behaviours: set[Behaviour]) -> list[tuple[Loan, LoanState]]:
    """Loans of the given behaviours with something outstanding and still repayable."""
    loans = [x for x in run.issued if x.behaviour in behaviours]
    states = run.states(loans)
    repayable = {LoanStatus.ACTIVE, LoanStatus.OVERDUE}
    return [
        (x, states[x.index])
        for x in loans
        if states[x.index].outstanding_fen > 0 and states[x.index].status in repayable
    ]


def _repay_from_wallets(run: LendingRun, todo: list[tuple[Loan, LoanState]], task: Any) -> None:
    """Farmers top up their wallets (bank -> eCNY: a mint here) and repay what is outstanding."""
    desk = run.desk
    calls: list[Any] = []
    for loan, state in todo:
        address = loan.wallet.address
        short = state.outstanding_fen - desk.balance_of(address)
        if short > 0:
            calls.append(desk.mint_call(address, short))
        if run.client.w3.eth.get_balance(address) < GAS_WEI // 2:
            calls.append({"to": address, "value": GAS_WEI, "data": b""})
    run.send(run.client.sender(ADMIN), calls)
    payers = [(run.client.sender_for(loan.wallet), state) for loan, state in todo]
    run.send_each([(p, desk.approve_call(s.escrow, s.outstanding_fen)) for p, s in payers])
    run.send_each([(p, desk.repay_call(s.escrow, s.outstanding_fen)) for p, s in payers], task)


def _noon(day: date) -> int:
    """Unix time of noon (UTC) on `day`."""
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp())


def repay_on_time(run: LendingRun) -> None:
    """In the first flush month of the schedule, on-time borrowers repay the rest."""
    todo = _open(run, {Behaviour.ON_TIME})
    task = run.progress.add_task("repaid by farmers on time", total=len(todo))
    if not todo:
        return
    firsts = [loan.disclosure.installments[0].due for loan, _ in todo if loan.disclosure]
    run.advance_to(max(_noon(d) for d in firsts))
    _repay_from_wallets(run, todo, task)


def _overdue_after(state: LoanState) -> int:
    """The first second a loan can be overdue (its grace period over)."""
    return state.due_date + GRACE_DAYS * DAY + 1


def mark_overdue(run: LendingRun) -> None:
    """After the grace period the lender's status check marks unpaid loans overdue."""
    todo = [(x, s) for x, s in _open(run, {Behaviour.LATE, Behaviour.DEFAULT})
            if s.status is LoanStatus.ACTIVE]  # fmt: skip
    task = run.progress.add_task("marked overdue", total=len(todo))
    if not todo:
        return
    run.advance_to(max(_overdue_after(s) for _, s in todo))
    calls = [run.desk.refresh_status_call(s.escrow) for _, s in todo]
    run.send(run.lender, calls, task)


def repay_late(run: LendingRun) -> None:
    """Late payers repay LATE_DAYS after their grace period ended."""
    todo = _open(run, {Behaviour.LATE})
    task = run.progress.add_task("repaid late", total=len(todo))
    if not todo:
        return
    run.advance_to(max(_overdue_after(s) + LATE_DAYS * DAY for _, s in todo))
    _repay_from_wallets(run, todo, task)


def declare_defaults(run: LendingRun) -> None:
    """DEFAULT_DAYS after the grace period the lender declares the rest in default."""
    todo = _open(run, {Behaviour.DEFAULT})
    task = run.progress.add_task("declared in default", total=len(todo))
    if not todo:
        return
    run.advance_to(max(_overdue_after(s) + DEFAULT_DAYS * DAY for _, s in todo))
    calls = [run.desk.declare_default_call(s.escrow) for _, s in todo]
    run.send(run.lender, calls, task)


# ---------------------------------------------------------------------------------- tally


def tally(run: LendingRun) -> None:
    """The summary's loan figures, read back from the chain."""
    s = run.summary
    states = list(run.states(run.issued).values())
    closed_bad = {LoanStatus.DEFAULTED, LoanStatus.WRITTEN_OFF}
    s.loans = len(states)
    s.lent_fen = sum(x.funded_fen for x in states)
    s.paid_to_merchants_fen = sum(x.paid_fen for x in states)
    s.returned_fen = sum(x.returned_fen for x in states)
    s.repaid_fen = sum(x.repaid_fen for x in states)
    s.defaults = sum(1 for x in states if x.status in closed_bad)
    s.outstanding_fen = sum(x.outstanding_fen for x in states if x.status in closed_bad)
    escrows = [x.escrow for x in states]
    overdue = run.desk.went_overdue(escrows, run.trace_block)
    s.late_payers = sum(1 for x in states if x.escrow in overdue and x.status is REPAID)
    s.repaid_from_sales_fen = sum(x.repaid_fen for x in run.sales.settled_shares(escrows))
    settled = [o for o in run.owed if run.sales.commitment(o.lot).sales]
    s.lots_settled = len(settled)
    s.sales_settled_fen = sum(o.amount_fen for o in settled)
    s.chain_time = chain_now(run.client)
