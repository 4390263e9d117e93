"""`tealedger demo`, lending stage: the season's credit, from consent to repayment or default.

After the season (tealedger.demo.season) a seeded share of farmers applies for a purpose-bound
inputs loan (winter base fertilizer, seedlings, pruning crews, machines). Every step a member of
the service can take goes through the service's own functions, the ones its routes call, so what
the demo shows is what the product does: the cooperatives enter their members in their registers
(api.cooperatives.members), the lender scores each applicant on the indexed profile
(api.lenders.service.make_decision), offers its input plan naming the member's cooperative as
agent (create_offer), the member signs the offer in their wallet app at the cooperative, which
relays the signature (api.cooperatives.offers), the lender issues and funds them in batches
(issue_loans), the platform approves merchants (api.admin.chain_roles), the cooperative orders
the invoices as order files (api.cooperatives.loans.order_rows), the lender takes back what was
not spent and later marks loans overdue or in default (api.lenders.servicing batches), and
the processor and the distributor commit and settle the owed lots through SaleSettlement with
the supply chain's batch service (api.supply_chain.batch), where each farmer's share repays the
loan first. Members consent at their cooperative too (api.cooperatives.consents). What only the
outside world does stays outside: the members' wallet apps sign consents, acceptances and
repayments (the service never holds these members' keys), the digital-yuan operator mints eCNY,
and the development chain's clock moves (evm_increaseTime + evm_mine) to the dates the escrows
need; see docs/demo.md.

Every step first asks the chain or the database what is done (deterministic wallets and invoice
numbers; one decision per farmer, lender and season in the credit store; one offer per decision),
so re-running continues where the last run stopped and never duplicates anything.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.progress import Progress
from sqlmodel import Session

from api.admin.chain_roles import MerchantApprovalRequest, approve_merchant
from api.cooperatives import consents as coop_consents
from api.cooperatives import loans as coop_loans
from api.cooperatives import offers as coop_offers
from api.core.acceptance import AcceptanceIn
from api.core.consent import ConsentIn
from api.core.db import open_database
from api.core.demo_status import StatusWriter
from api.core.models import Organisation, Role
from api.core.settings import ApiSettings
from api.lenders import service as lenders
from api.lenders.portfolio import Action
from api.lenders.service import MAX_ISSUE_BATCH, IssueBatch, LoanCreate
from api.lenders.servicing import MAX_SERVICE_BATCH, ServiceBatch, service_loans
from api.supply_chain import batch as lot_batch
from chain.client import ChainClient
from chain.errors import ChainError
from chain.sender import PendingTx, Sender
from lending.credit.decision import DecisionRecord
from lending.credit.features import CHINA_TZ
from lending.credit.policy import Outcome
from lending.credit.store import CreditStore
from lending.loans.contracts import DEV_LENDER, DEV_REGISTRAR
from lending.loans.disbursement import EscrowTerms, LoanDesk, LoanState, LoanStatus
from lending.loans.gas import APPROVE_GAS, MINT_GAS, REPAY_GAS
from lending.loans.invoices import invoice_hash
from lending.loans.merchants import MerchantDesk
from lending.loans.offers import OfferStore
from lending.loans.settlement import (
    FarmerShare,
    SettlementDesk,
    normalize_shares,
    split_amount,
)
from lending.pricing.disclosure import Disclosure
from lending.pricing.lpr import LprTable, load_lpr_table, save_lpr_table, user_table_path
from simulation.season import FLUSHES, Farmer
from tealedger.demo.season import (
    BUYER,
    COOPERATIVE_ACCOUNTS,
    DISTRIBUTOR,
    PROCESSOR,
    Region,
    SeasonSummary,
    demo_key,
    farmer_wallet,
    latest_full_season,
    progress_bars,
)
from tealedger.demo.service import (
    adopt_members,
    demo_organisations,
    ensure_organisation,
    index_chain,
)
from traceability import contracts
from traceability.consent import ConsentService
from traceability.service import RecordingService
from traceability.weights import LeafFlow, LeafLot, MassStep

PLAIN_TRANSFER_GAS = 21_000
ADMIN = 0  # holds PaymentToken's minter role on development chains
DAY = 86_400
APPLY_SHARE = 0.35
DRAW_DAYS = 30
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
    """A merchant's invoice paid from a loan (its number, hashed with the merchant, is the
    escrow's idempotency key: lending.loans.invoices)."""

    category: str
    merchant: str
    amount_fen: int
    reference: str


@dataclass
class Loan:
    """One applicant's way through the season's credit."""

    index: int
    farmer_id: bytes
    wallet: LocalAccount
    agent: int
    needs_fen: dict[str, int]
    record: DecisionRecord | None = None
    offer_id: str | None = None
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
    """Handles shared by the steps: chain, service settings and organisations, the season and
    the tally."""

    client: ChainClient
    region: Region
    made_lots: list[bytes]
    settings: ApiSettings
    progress: Progress
    summary: LendingSummary = field(default_factory=LendingSummary)
    loans: list[Loan] = field(default_factory=list)
    owed: list[OwedLot] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.desk = LoanDesk(self.client)
        from_block = contracts.deployment_block(self.client)
        self.trace_block = from_block
        self.sales = SettlementDesk(self.client, from_block=from_block)
        self.engine = open_database(self.settings.database_url)
        self.store = CreditStore(self.engine)
        self.offers = OfferStore(self.engine)
        self.orgs = demo_organisations(self.client, self.settings)
        self.lender = self.orgs[DEV_LENDER]
        self.merchants = merchant_organisations(self.client, self.settings)
        self.year = self.region.season.year

    @property
    def issued(self) -> list[Loan]:
        """Loans that exist on chain."""
        return [loan for loan in self.loans if loan.escrow is not None]

    def coop(self, account: int) -> Organisation:
        """The organisation of the cooperative on dev account `account`."""
        return self.orgs[account]

    def merchant(self, merchant: Merchant) -> Organisation:
        """A demo merchant's organisation."""
        return self.merchants[merchant.name]

    def service_loans(self, action: Action, escrows: Sequence[str], task: Any) -> None:
        """The lender sends `action` to its loans through its service's servicing batches
        (each loan checked by eth_call, then the batch sent back to back)."""
        for start in range(0, len(escrows), MAX_SERVICE_BATCH):
            chunk = list(escrows[start : start + MAX_SERVICE_BATCH])
            body = ServiceBatch(action=action, escrows=chunk)
            out = service_loans(self.client, self.settings, self.lender, body)
            if out.refused:
                raise ChainError(f"the lender's service refused to {action.value} loan "
                                 f"{out.refused[0].escrow}: {out.refused[0].reason}")  # fmt: skip
            self.progress.advance(task, len(chunk))

    def disclosure(self, loan: Loan) -> Disclosure:
        """The disclosure the farmer signed (kept with the offer)."""
        assert loan.offer_id is not None
        stored = self.offers.get(loan.offer_id)
        assert stored is not None
        return stored.disclosure

    def send(self, sender: Sender, calls: Sequence[Any], gas: Sequence[int]) -> None:
        """Send independent calls of one sender with their measured gas limits and wait for
        them; on a node that mines on demand (anvil) they are mined together in blocks of at
        most the gas target (Sender.packed): a block each cost the top-ups before the
        repayments 97 s of a 3,000-farmer run, anvil's per-block work growing with its history."""

        def part(items: Sequence[tuple[Any, int]]) -> list[PendingTx]:
            fees = sender.fees([limit for _, limit in items])
            return [sender.send(call, gas=limit, fees=fees) for call, limit in items]

        if calls:
            sender.wait(sender.packed(list(zip(calls, gas, strict=True)), max(gas), part))

    def send_each(
        self, pairs: Sequence[tuple[Sender, Any]], task: Any = None, gas: int | None = None
    ) -> None:
        """Pipeline calls of many senders (each sender's in order, with the measured `gas`
        bound, else estimated), then wait for all. With a bound, on a node that mines on demand
        (anvil), they are mined together in blocks of at most the gas target, as
        Sender.send_many mines one sender's."""

        def send(part: Sequence[tuple[Sender, Any]]) -> list[tuple[Sender, PendingTx]]:
            return [(s, s.send(call, gas=gas)) for s, call in part]

        bounded = gas is not None and bool(pairs)
        pending = pairs[0][0].packed(pairs, gas, send) if bounded else send(pairs)  # type: ignore[arg-type]
        for sender, tx in pending:
            sender.wait([tx])
            if task is not None:
                self.progress.advance(task)

    def advance_to(self, target: int) -> None:
        """Move the chain's clock to `target` if it is earlier (development chains)."""
        self.summary.days_advanced += Decimal(advance_to(self.client, target)) / DAY

    def states(self, loans: Iterable[Loan]) -> dict[int, LoanState]:
        """Escrow states by farmer index."""
        issued = [loan for loan in loans if loan.escrow]
        states = self.desk.states([loan.escrow for loan in issued])  # type: ignore[misc]
        return {loan.index: state for loan, state in zip(issued, states, strict=True)}


def run_lending(
    client: ChainClient,
    region: Region,
    season: SeasonSummary,
    settings: ApiSettings,
    console: Console,
    status: StatusWriter | None = None,
) -> LendingSummary:
    """Run the season's lending through the service's functions (idempotently); returns the
    tally read from chain. Its progress goes to `status` too, if given."""
    started = time.perf_counter()
    first_block, sent_before = client.w3.eth.block_number, client.transactions_sent
    with progress_bars(console, status) as progress:
        run = LendingRun(client, region, season.made_lots, settings, progress)
        _steps(run)
    run.summary.new_transactions = client.transactions_sent - sent_before
    run.summary.gas_used = _gas_since(client, first_block)
    run.summary.seconds = time.perf_counter() - started
    return run.summary


def _gas_since(client: ChainClient, block: int) -> int:
    """Gas used in the blocks mined after `block`, from their headers (a node keeping only its
    latest blocks' transactions keeps every header; the transactions are counted as sent)."""
    latest = client.w3.eth.block_number
    return sum(int(client.w3.eth.get_block(n)["gasUsed"]) for n in range(block + 1, latest + 1))


def _steps(run: LendingRun) -> None:
    """The stage's steps, in chain-time order."""
    client, region = run.client, run.region
    run.loans = applications(region)
    run.summary.applicants = len(run.loans)
    adopted = adopt_members(client, run.settings, region)
    if adopted:
        run.progress.console.print(f"{adopted:,} members entered in their cooperatives' registers")
    grant_consents(run)
    score_applications(run)
    make_offers(run)
    accept_offers(run)
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


def merchant_address(client: ChainClient, merchant: Merchant) -> str:
    """Where a merchant is paid."""
    return str(_merchant_account(client, merchant).address)


def _merchant_account(client: ChainClient, merchant: Merchant) -> LocalAccount:
    """A merchant's key: a dev account, or one derived from its name (never real funds)."""
    if merchant.account is not None:
        return client.accounts[merchant.account]
    return demo_key(f"merchant:{merchant.name}")


def merchant_organisations(client: ChainClient, settings: ApiSettings) -> dict[str, Organisation]:
    """Each demo merchant as an organisation of the service (made once), so it can log in and
    confirm its orders; by name."""
    return {
        m.name: ensure_organisation(settings, Role.MERCHANT, m.name, _merchant_account(client, m))
        for m in MERCHANTS
    }


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


def _cooperative(coop: int) -> int:
    """The dev account of a demo cooperative (which registered its members)."""
    return COOPERATIVE_ACCOUNTS[coop % len(COOPERATIVE_ACCOUNTS)]


def scale_budgets(needs: dict[str, int], principal: int) -> dict[str, int]:
    """Budgets adding up to exactly `principal`, in proportion to the needs (whole fen)."""
    total = sum(needs.values())
    budgets = {k: v * principal // total for k, v in needs.items()}
    first = max(budgets, key=lambda k: budgets[k])
    budgets[first] += principal - sum(budgets.values())
    return {k: v for k, v in budgets.items() if v > 0}


def spending(
    client: ChainClient, loan: Loan, budgets: Mapping[Any, int], year: int
) -> list[Invoice]:
    """The invoices the farmer's cooperative pays from the loan: 85-100% of each budget."""
    rng = random.Random(f"{year}:lending:invoices:{loan.farmer_id.hex()}")
    invoices = []
    for category in sorted(str(c) for c in budgets):
        sellers = [m for m in MERCHANTS if m.category == category]
        spend = budgets[category] * rng.randint(85, 100) // 100
        parts = 2 if category == "fertilizer" and spend >= 200_000 else 1
        for k in range(parts):
            amount = spend // parts + (spend % parts if k == 0 else 0)
            merchant = merchant_address(client, rng.choice(sellers))
            reference = f"INV-{year}-{loan.farmer_id.hex()[:12]}-{category[:4]}-{k}"
            invoices.append(Invoice(category, merchant, amount, reference))
    return [i for i in invoices if i.amount_fen > 0]


def season_of_contract(day: date) -> int:
    """The season a lending round belongs to (the last full season before the contract date)."""
    return latest_full_season(datetime(day.year, day.month, day.day, tzinfo=UTC))


# ---------------------------------------------------------------------------------- steps


def grant_consents(run: LendingRun) -> None:
    """Applicants consent for the lender at their cooperative: the clerk asks the service for
    the consent's typed data, the member's wallet app signs it, and the cooperative relays the
    day's signatures together (api.cooperatives.consents; the farmer needs no gas). Consent
    runs CONSENT_DAYS."""
    service = ConsentService(run.client)
    lender = run.lender.chain_address
    now = chain_now(run.client)
    todo: dict[int, list[Loan]] = {}
    for loan in run.loans:
        if service.expiry(loan.farmer_id, lender) <= now:
            todo.setdefault(loan.agent, []).append(loan)
    task = run.progress.add_task("consents to the lender", total=len(run.loans))
    run.progress.advance(task, len(run.loans) - sum(map(len, todo.values())))
    for agent, loans in todo.items():
        for start in range(0, len(loans), coop_consents.MAX_CONSENT_BATCH):
            chunk = loans[start : start + coop_consents.MAX_CONSENT_BATCH]
            _relay_consents(run, run.coop(agent), chunk)
            run.progress.advance(task, len(chunk))


def _relay_consents(run: LendingRun, coop: Organisation, loans: Sequence[Loan]) -> None:
    """One cooperative's batch: each member signs the consent the desk asked for, then the
    cooperative relays them in one request."""
    assert run.lender.id is not None
    asked = ConsentIn(lender_org_id=run.lender.id, days=CONSENT_DAYS)
    signed: list[coop_consents.MemberConsent] = []
    with Session(run.engine) as session:
        for loan in loans:
            fid = "0x" + loan.farmer_id.hex()
            request = coop_consents.consent_request(session, run.client, coop, fid, asked)
            # DEMO ONLY: the member's wallet app signs; a real member signs on their phone.
            sig = loan.wallet.sign_message(encode_typed_data(full_message=request.typed_data))
            signed.append(coop_consents.MemberConsent(
                farmer_id=loan.farmer_id, lender_org_id=run.lender.id,
                expires_at=request.expires_at, deadline=request.deadline,
                signature="0x" + sig.signature.hex(),
            ))  # fmt: skip
        batch = coop_consents.ConsentBatch(consents=signed)
        out = coop_consents.relay_consents(session, run.client, run.settings, coop, batch)
    if out.refused:
        raise ChainError(f"the cooperative's service refused a consent: {out.refused[0].reason}")


def score_applications(run: LendingRun) -> None:
    """Index the chain, then the lender scores every applicant once per season through the
    lenders' service (consent checked on chain, the read logged, the decision stored)."""
    task = run.progress.add_task("index, then credit decisions", total=len(run.loans) + 1)
    index_chain(run.client, run.settings.database_url)
    run.progress.advance(task)
    at = datetime.fromtimestamp(chain_now(run.client), UTC)
    price_on(run, max(at, datetime.now(UTC)).astimezone(CHINA_TZ).date())
    lender = run.lender.chain_address.lower()
    year = run.region.season.year
    for loan in run.loans:
        fid = "0x" + loan.farmer_id.hex()
        earlier = [
            r
            for r in run.store.decisions_for(fid)
            if r.lender == lender and season_of_contract(r.decision.contract_date) == year
        ]
        loan.record = earlier[-1] if earlier else lenders.make_decision(
            run.engine, run.settings, run.client, run.lender, fid
        )  # fmt: skip
        run.progress.advance(task)
    outcomes = [loan.record.decision.outcome for loan in run.loans if loan.record]
    run.summary.approved = outcomes.count(Outcome.APPROVE)
    run.summary.referred = outcomes.count(Outcome.REFER)
    run.summary.declined = outcomes.count(Outcome.DECLINE)


def price_on(run: LendingRun, day: date) -> None:
    """Make the LPR table the service prices with cover `day`, saying so if it had to assume."""
    table = assume_lpr_through(day)
    if table is not None:
        last = table.fixings[-1]
        run.progress.console.print(
            f"[yellow]assumption:[/] the LPR table ended before {day}; the demo prices as if "
            f"the 1-year LPR stayed {last.rate_pct}% (fixed {last.date}) through {day} (table "
            f"{table.version}, written to {user_table_path()}). Real pricing refuses this: "
            "record the published fixings with `tealedger lpr update`",
            highlight=False,
        )


def assume_lpr_through(day: date) -> LprTable | None:
    """If the LPR table ends before `day`, record (as `tealedger lpr update` would) one that
    assumes its last fixing unchanged through `day`, and return it; else None. The demo only.

    The demo prices on its chain's date (today, or later once it moved the clock), and the
    service refuses a table that ends before the contract date. The version names the
    assumption, so every disclosure priced with it says so; real fixings replace it.
    """
    table = load_lpr_table()
    if table.covers_through >= day:
        return None
    assumed = table.assuming_unchanged_through(day)
    save_lpr_table(assumed, user_table_path())
    return assumed


def _principal(record: DecisionRecord, needs: dict[str, int]) -> int:
    """What the farmer borrows: its needs, within the product's minimum and the limit."""
    d = record.decision
    return min(max(sum(needs.values()), d.policy.product.min_limit_fen), d.limit_fen)


def make_offers(run: LendingRun) -> None:
    """The lender offers each approved applicant its input plan (the lenders' service: one offer
    per decision), naming the applicant's cooperative as the loan's agent."""
    approved = [x for x in run.loans if x.record and x.record.decision.outcome is Outcome.APPROVE]
    task = run.progress.add_task("offers made", total=len(approved))
    for loan in approved:
        assert loan.record is not None
        made = [o for o in run.offers.for_farmer("0x" + loan.farmer_id.hex())
                if o.decision_id == loan.record.decision_id]  # fmt: skip
        if made:
            loan.offer_id = made[-1].offer_id
        else:
            budgets = scale_budgets(loan.needs_fen, _principal(loan.record, loan.needs_fen))
            body = LoanCreate(budgets_fen=budgets, draw_days=DRAW_DAYS)
            created = lenders.create_offer(
                run.engine, run.client, run.lender, loan.record.decision_id, body
            )
            loan.offer_id = created.offer_id
        run.progress.advance(task)


def accept_offers(run: LendingRun) -> None:
    """Each applicant reads its offer at the cooperative and signs it in its own wallet app;
    the clerk relays the signature (the cooperatives' service checks it against the terms)."""
    offered = [x for x in run.loans if x.offer_id is not None]
    task = run.progress.add_task("offers signed by farmers", total=len(offered))
    for loan in offered:
        assert loan.offer_id is not None
        stored = run.offers.get(loan.offer_id)
        assert stored is not None
        if stored.acceptance is None and stored.escrow is None:
            coop = run.coop(loan.agent)
            with Session(run.engine) as session:
                view = coop_offers.offer_to_sign(session, run.engine, run.client, coop,
                                                 loan.offer_id)  # fmt: skip
                typed = view.typed_data
                # DEMO ONLY: the member's wallet app signs; a real member signs on their phone.
                signed = loan.wallet.sign_message(encode_typed_data(full_message=typed))
                body = AcceptanceIn(
                    nonce=typed["message"]["nonce"],
                    deadline=typed["message"]["deadline"],
                    signature="0x" + signed.signature.hex(),
                )
                coop_offers.relay_acceptance(session, run.engine, run.client, coop,
                                             loan.offer_id, body)  # fmt: skip
        run.progress.advance(task)


def issue_loans(run: LendingRun) -> None:
    """The lender issues and funds the accepted offers that still stand through its service's
    batch (each checked and eth_called first; development eCNY minted for them; one approval,
    the issues pipelined)."""
    offered = [x for x in run.loans if x.offer_id is not None]
    task = run.progress.add_task("loans issued", total=len(offered))
    now = chain_now(run.client)
    todo, principal = [], 0
    for loan in offered:
        stored = run.offers.get(loan.offer_id)  # type: ignore[arg-type]
        assert stored is not None
        loan.terms = stored.terms
        if stored.escrow is None and _may_issue(run, stored.terms, now):
            todo.append(stored.offer_id)
            principal += stored.terms.principal_fen
        else:
            run.progress.advance(task)
    if todo and run.settings.environment != "production":
        # the season's development eCNY at once, as the batches would: they then mint none
        lenders.ensure_lender_role(run.client, run.lender, mint_fen=principal)
    for start in range(0, len(todo), MAX_ISSUE_BATCH):
        batch = IssueBatch(offer_ids=todo[start : start + MAX_ISSUE_BATCH])
        out = lenders.issue_loans(run.engine, run.settings, run.client, run.lender, batch)
        if out.refused:
            raise ChainError(f"the lender's service refused to issue: {out.refused[0].reason}")
        run.progress.advance(task, len(out.issued))
    for loan in offered:
        stored = run.offers.get(loan.offer_id)  # type: ignore[arg-type]
        if stored is not None and stored.escrow is not None:
            loan.escrow = stored.escrow
            loan.invoices = spending(run.client, loan, stored.terms.budgets_fen, run.year)


def _may_issue(run: LendingRun, terms: EscrowTerms, now: int) -> bool:
    """An offer still standing (a day of its draw window left), no other open loan."""
    fresh = now + DAY < terms.draw_deadline
    return fresh and run.desk.active_loan_of(terms.farmer_id) is None


def pay_merchants(run: LendingRun) -> None:
    """The platform approves the merchants per category, then each cooperative orders its
    members' invoices through its service as order files (idempotent by invoice: a re-run
    finds every invoice used and orders nothing)."""
    approve_merchants(run)
    files = _order_files(run)
    task = run.progress.add_task("merchant payments", total=sum(map(len, files.values())))
    for agent, lines in files.items():
        for start in range(0, len(lines), coop_loans.MAX_ORDER_ROWS):
            chunk = lines[start : start + coop_loans.MAX_ORDER_ROWS]
            with Session(run.engine) as session:
                batch = coop_loans.order_rows(session, run.client, run.settings, run.coop(agent),
                                              list(enumerate(chunk, start=2)))  # fmt: skip
            refused = [r for r in batch.rows if r.outcome == "error"]
            if refused:
                raise ChainError(f"the cooperative's service refused an order: {refused[0].reason}")
            run.progress.advance(task, len(chunk))


def _order_files(run: LendingRun) -> dict[int, list[dict[str, str]]]:
    """Each cooperative's order file: the invoices of its members' loans still drawable that
    are not ordered yet (rows as the CSV's columns)."""
    now = chain_now(run.client)
    states = run.states(run.issued)
    files: dict[int, list[dict[str, str]]] = {}
    for loan in run.issued:
        state = states[loan.index]
        if state.status is not LoanStatus.ACTIVE or now > state.draw_deadline:
            continue
        for invoice in loan.invoices:
            key = invoice_hash(invoice.merchant, invoice.reference)
            if run.desk.invoice_used(state.escrow, key):
                continue
            files.setdefault(loan.agent, []).append({
                "member": "0x" + loan.farmer_id.hex(),
                "merchant": invoice.merchant,
                "category": invoice.category,
                "amount_yuan": f"{invoice.amount_fen // 100}.{invoice.amount_fen % 100:02d}",
                "invoice": invoice.reference,
            })  # fmt: skip
    return files


def approve_merchants(run: LendingRun) -> None:
    """The platform's registrar approves each demo merchant for its category (two years)."""
    registry = MerchantDesk(run.client)
    until = chain_now(run.client) + APPROVAL_DAYS * DAY
    for merchant in MERCHANTS:
        org = run.merchant(merchant)
        if not registry.is_approved(org.chain_address, merchant.category):
            body = MerchantApprovalRequest(categories=[merchant.category], valid_until=until)
            approve_merchant(run.client, org, body)


def close_draw_window(run: LendingRun) -> None:
    """After the draw window, the lender takes back what the farmers did not spend."""
    states = run.states(run.issued)
    todo = [s for s in states.values() if s.available_fen > 0 and s.status is LoanStatus.ACTIVE]
    task = run.progress.add_task("unspent returned", total=len(todo))
    if not todo:
        return
    run.advance_to(max(s.draw_deadline for s in todo) + 1)
    run.service_loans(Action.RETURN_UNSPENT, [s.escrow for s in todo], task)


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
    """The processor commits the owed lots' shares and the distributor pays the lots, both
    through the supply chain's batch service (lineage from the index, each lot checked by
    eth_call, sent back to back): a factory's and a distributor's day of lots per request."""
    status = {o.lot: run.sales.commitment(o.lot) for o in run.owed}
    settle = [o for o in run.owed if status[o.lot].sales == 0]
    task = run.progress.add_task("sales settled", total=len(run.owed))
    run.progress.advance(task, len(run.owed) - len(settle))
    if not settle:
        return
    if run.issued:  # the distributor pays on 45-day terms: after the draw window
        deadline = max(s.draw_deadline for s in run.states(run.issued).values())
        run.advance_to(deadline + SETTLE_AFTER_DRAW_DAYS * DAY)
    index_chain(run.client, run.settings.database_url)  # what the service's follower does
    processor, distributor = run.orgs[PROCESSOR], run.orgs[DISTRIBUTOR]
    # The distributor's bank pays it eCNY for the lots it owes (the outside world: a mint).
    _mint(run, distributor.chain_address, sum(o.amount_fen for o in settle))
    for start in range(0, len(settle), lot_batch.MAX_LOTS):
        chunk = settle[start : start + lot_batch.MAX_LOTS]
        lots = lot_batch.LotsIn(lots=[o.lot for o in chunk])
        _all_done(lot_batch.commit_lots(run.client, run.settings, processor, lots), "commit")
        sales = lot_batch.SalesIn(
            sales=[lot_batch.SaleLine(lot=o.lot, amount_fen=o.amount_fen) for o in chunk]
        )
        _all_done(lot_batch.settle_lots(run.client, run.settings, distributor, sales), "settle")
        run.progress.advance(task, len(chunk))


def _all_done(out: lot_batch.BatchOut, what: str) -> None:
    """Stop the demo if the service refused any lot (the season is the demo's own)."""
    refused = [x for x in out.lots if x.outcome is lot_batch.Outcome.REFUSED]
    if refused:
        raise ChainError(f"the service refused to {what} lot {refused[0].lot}: {refused[0].reason}")


def _mint(run: LendingRun, holder: str, amount: int) -> None:
    """Mint the holder's shortfall of `amount` (development eCNY: the bank's side)."""
    short = amount - run.desk.balance_of(holder)
    if short > 0:
        run.client.sender(ADMIN).transact(run.desk.mint_call(holder, short), gas=MINT_GAS)


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
    """Farmers top up their wallets (bank -> eCNY: a mint here) and repay what is outstanding
    from their wallet apps (the service never holds these members' keys)."""
    desk = run.desk
    calls: list[Any] = []
    limits: list[int] = []
    for loan, state in todo:
        address = loan.wallet.address
        short = state.outstanding_fen - desk.balance_of(address)
        if short > 0:
            calls.append(desk.mint_call(address, short))
            limits.append(MINT_GAS)
        if run.client.w3.eth.get_balance(address) < GAS_WEI // 2:
            calls.append({"to": address, "value": GAS_WEI, "data": b""})
            limits.append(PLAIN_TRANSFER_GAS)
    run.send(run.client.sender(ADMIN), calls, gas=limits)
    payers = [(run.client.sender_for(loan.wallet), state) for loan, state in todo]
    approvals = [(p, desk.approve_call(s.escrow, s.outstanding_fen)) for p, s in payers]
    run.send_each(approvals, gas=APPROVE_GAS)
    repays = [(p, desk.repay_call(s.escrow, s.outstanding_fen)) for p, s in payers]
    run.send_each(repays, task, gas=REPAY_GAS)


def _noon(day: date) -> int:
    """Unix time of noon (UTC) on `day`."""
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp())


def repay_on_time(run: LendingRun) -> None:
    """In the first flush month of the schedule, on-time borrowers repay the rest."""
    todo = _open(run, {Behaviour.ON_TIME})
    task = run.progress.add_task("repaid by farmers on time", total=len(todo))
    if not todo:
        return
    firsts = [run.disclosure(loan).installments[0].due for loan, _ in todo]
    run.advance_to(max(_noon(d) for d in firsts))
    _repay_from_wallets(run, todo, task)


def _overdue_after(loan: Loan, state: LoanState) -> int:
    """The first second a loan can be overdue (its grace period over)."""
    assert loan.terms is not None
    return state.due_date + loan.terms.grace_days * DAY + 1


def mark_overdue(run: LendingRun) -> None:
    """After the grace period the lender's status check (its service) marks unpaid loans
    overdue."""
    todo = [(x, s) for x, s in _open(run, {Behaviour.LATE, Behaviour.DEFAULT})
            if s.status is LoanStatus.ACTIVE]  # fmt: skip
    task = run.progress.add_task("marked overdue", total=len(todo))
    if not todo:
        return
    run.advance_to(max(_overdue_after(x, s) for x, s in todo))
    run.service_loans(Action.REFRESH, [s.escrow for _, s in todo], task)


def repay_late(run: LendingRun) -> None:
    """Late payers repay LATE_DAYS after their grace period ended."""
    todo = _open(run, {Behaviour.LATE})
    task = run.progress.add_task("repaid late", total=len(todo))
    if not todo:
        return
    run.advance_to(max(_overdue_after(x, s) + LATE_DAYS * DAY for x, s in todo))
    _repay_from_wallets(run, todo, task)


def declare_defaults(run: LendingRun) -> None:
    """Once its terms allow, the lender declares the rest in default through its service."""
    todo = _open(run, {Behaviour.DEFAULT})
    task = run.progress.add_task("declared in default", total=len(todo))
    if not todo:
        return
    run.advance_to(max(_default_after(x, s) for x, s in todo))
    run.service_loans(Action.DEFAULT, [s.escrow for _, s in todo], task)


def _default_after(loan: Loan, state: LoanState) -> int:
    """The first second the lender may declare the loan in default."""
    assert loan.terms is not None
    return _overdue_after(loan, state) + loan.terms.default_days * DAY


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
