"""Ground truth on a real chain: play a `simulation.risk_cases` plan after an honest season.

The honest world is the demo's own (tealedger.demo.season and .lending: a season, its loans,
merchants, repayments, a default). On top of it each case sends the transactions its pattern
is made of, as the people misusing the system would: a merchant paying loan money back to the
borrower through fresh wallets, money going round a cycle of fresh wallets, two farmers on one
wallet, harvests far above what a plot can give, a loan priced above the cap sent straight to
the LoanFactory (the service would refuse it), decisions at two lenders, a re-borrow right after
repaying. Cases run side by side on one clock (each waits its own delays), so the whole plan
moves the development chain's clock by weeks, not by the sum of its delays.

Then the chain is indexed and the rules run (`risk.scan`); `score` says which findings are
about an injected case. Keys for the wallets a case makes are derived from public text
(`demo_key`): never real funds.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from rich.console import Console
from sqlalchemy import Engine, select

from api.core.db import open_database
from api.core.models import Organisation, Role
from api.core.settings import ApiSettings
from api.lenders import service as lenders
from chain.client import ChainClient
from chain.config import DEV_MNEMONIC, PROJECT_ROOT, ChainSettings
from chain.errors import ChainError
from chain.nodes import AnvilNode, free_port
from chain.roles import grant_role_once
from indexer.db import make_engine
from indexer.models import CoopSeason, Harvest
from lending.errors import LendingError
from lending.loans.contracts import DEV_LENDER, DEV_REGISTRAR, LENDER_ROLE
from lending.loans.disbursement import EscrowTerms, LoanDesk
from lending.loans.merchants import MerchantDesk
from lending.pricing.caps import DEFAULT_POLICY, binding_cap
from lending.pricing.lpr import LprTable, load_lpr_table
from risk import scan as risk_scan
from risk.ledger import load_loans
from risk.rules import RULES, Finding
from simulation.risk_cases import DAY, HOUR, PATTERNS, Case
from tealedger.demo.lending import (
    ADMIN,
    MERCHANTS,
    advance_to,
    chain_now,
    merchant_address,
    run_lending,
)
from tealedger.demo.season import (
    COOPERATIVE_ACCOUNTS,
    Region,
    demo_key,
    farmer_wallet,
    run_season,
)
from tealedger.demo.service import ensure_organisation, index_chain
from tealedger.system import deploy_system
from traceability.consent import ConsentService
from traceability.contracts import PROCESSOR_ROLE, tea_trace
from traceability.errors import TraceabilityError
from traceability.models import FarmerRegistration, HarvestRecord, ProcessOutput
from traceability.service import RecordingService

GAS_WEI = 10**18
LOAN_DAYS = 180
CATEGORY = "fertilizer"
FLUSH = "autumn"
"""Implausible harvests are booked in the last flush (a flush is a season of its own)."""
HONEST_APR_BPS = 800
"""Carrier loans (the loans a case needs to exist) are priced like the demo's: 8%."""
BACKGROUND_DAYS = 30
BASELINE_PATTERNS = {"new_merchant_surge", "merchant_concentration"}
"""Patterns judged against other merchants' inflow at the time: honest spending runs beside."""
CARRIER_REST_DAYS = 30
"""A borrower carrying a case's loan repaid its last loan at least this long before."""
SECOND_LENDERS = ("Hubei rural credit union 湖北农信", "Enshi village bank 恩施村镇银行")


class InjectionError(RuntimeError):
    """A case could not be played on this world (e.g. no farmer left to carry it)."""


@dataclass
class Label:
    """An injected case, with what it is about once played (0x hex ids, lower case)."""

    case: Case
    subject: str = ""
    loans: set[int] = field(default_factory=set)
    farmers: set[str] = field(default_factory=set)
    wallets: set[str] = field(default_factory=set)
    lots: set[str] = field(default_factory=set)
    skipped: str | None = None
    """Why the case could not be played (it then counts nowhere)."""
    also: set[str] = field(default_factory=set)
    """Other patterns the case is made of (a second farmer id on one wallet is also a shared
    wallet): their rules' findings about it are right, though it counts in no recall but its
    own."""

    @property
    def pattern(self) -> str:
        """The rule that should find it."""
        return self.case.pattern

    def shows(self, pattern: str) -> bool:
        """True if a finding of `pattern`'s rule about this case is right: a played case of
        that pattern, or one made of it too (`also`)."""
        return self.skipped is None and (pattern == self.pattern or pattern in self.also)

    def matches(self, finding: Finding) -> bool:
        """True if the finding is about this case: its subject, or a loan, farmer, wallet or
        lot of its evidence."""
        if self.skipped is not None:
            return False
        if finding.subject.lower() == self.subject.lower():
            return True
        kind, _, ident = finding.subject.partition(":")
        ident = ident.lower()
        own = {"loan": {str(x) for x in self.loans}, "farmer": self.farmers,
               "wallet": self.wallets, "lot": self.lots}.get(kind, set())  # fmt: skip
        ev = finding.evidence
        return bool(
            ident in own
            or self.loans & set(ev.loans)
            or self.farmers & {x.lower() for x in ev.farmers}
            or self.wallets & {x.lower() for x in ev.wallets}
            or self.lots & {x.lower() for x in ev.lots}
        )


def hx(value: bytes | str) -> str:
    """0x-prefixed lower-case hex of bytes or an address."""
    return ("0x" + value.hex()) if isinstance(value, bytes) else value.lower()


Steps = Iterator[int]
"""A case played as a generator: it sends transactions and yields how long to wait next."""


class Injector:
    """Plays cases on a world built by the demo (chain, season, service database)."""

    def __init__(
        self, client: ChainClient, region: Region, settings: ApiSettings, seed: int
    ) -> None:
        self.client, self.region, self.settings, self.seed = client, region, settings, seed
        self.desk = LoanDesk(client)
        self.registry = MerchantDesk(client)
        self.engine: Engine = open_database(settings.database_url)
        self.lender = client.sender(DEV_LENDER)
        self.pool, self.repaid = self._free_farmers()
        self.invoices = 0

    # ------------------------------------------------------------------ the world

    def _free_farmers(self) -> tuple[list[int], list[int]]:
        """Farmers (season indices) who never borrowed, and those whose loans all closed at
        least CARRIER_REST_DAYS before (a carrier loan right after a repayment would itself be
        a re-borrow the plan did not label), each in a seeded order: the carriers of cases."""
        factory = self.desk.factory.functions
        settled = _settled_before(self.client, self.settings.database_url, CARRIER_REST_DAYS)
        never, closed = [], []
        for i, fid in enumerate(self.region.farmer_ids):
            if int(factory.latestLoanOf(fid).call(), 16) == 0:
                never.append(i)
            elif int(factory.activeLoanOf(fid).call(), 16) == 0 and fid in settled:
                closed.append(i)
        random.Random(f"{self.seed}:risk:carriers").shuffle(never)
        random.Random(f"{self.seed}:risk:borrowers").shuffle(closed)
        return never, closed

    def farmer(self) -> int:
        """A farmer who never borrowed and no other case uses."""
        if not self.pool:
            raise InjectionError("no farmer left who never borrowed: run a larger season")
        return self.pool.pop()

    def borrower(self) -> int:
        """A farmer free to borrow (its earlier loans repaid months ago, else one who never
        borrowed) that no other case uses: loans that only carry money to a merchant."""
        return self.repaid.pop() if self.repaid else self.farmer()

    def fid(self, index: int) -> bytes:
        """A farmer's pseudonymous id."""
        return self.region.farmer_ids[index]

    def coop_account(self, index: int) -> int:
        """The dev account of the farmer's cooperative."""
        coop = self.region.season.farmers[index].cooperative
        return COOPERATIVE_ACCOUNTS[coop % len(COOPERATIVE_ACCOUNTS)]

    def key(self, case: Case, name: str) -> LocalAccount:
        """A fresh wallet of a case (derived from public text: never real funds)."""
        return demo_key(f"risk:{self.seed}:{case.case_id}:{name}")

    def gas(self, address: str) -> None:
        """Development ether for a wallet that sends transactions (anvil's own setter)."""
        reply = self.client.w3.provider.make_request(  # type: ignore[arg-type]
            "anvil_setBalance", [address, hex(GAS_WEI)]
        )
        if "error" in reply:
            raise ChainError(f"anvil_setBalance failed: {reply['error']}")

    def mint(self, address: str, fen: int) -> None:
        """Development eCNY from the token admin (the bank's side)."""
        self.client.sender(ADMIN).transact(self.desk.mint_call(address, fen))

    def pay(self, wallet: LocalAccount, to: str, fen: int) -> None:
        """An eCNY transfer from a wallet whose key the case holds."""
        fn = self.desk.token.functions.transfer(self.client.w3.to_checksum_address(to), fen)
        self.client.sender_for(wallet).transact(fn)

    # ------------------------------------------------------------------ loans

    def issue(
        self, index: int, principal: int, apr_bps: int = HONEST_APR_BPS, draw_days: int = 30,
        lender: LocalAccount | None = None, category: str = CATEGORY, due_days: int = LOAN_DAYS,
    ) -> tuple[int, str]:  # fmt: skip
        """Issue and fund a loan to a farmer of the season (its own wallet, its cooperative as
        agent)."""
        return self.issue_to(
            self.fid(index), self.coop_account(index), principal, apr_bps=apr_bps,
            draw_days=draw_days, lender=lender, category=category, due_days=due_days,
        )  # fmt: skip

    def issue_to(
        self, fid: bytes, agent: int, principal: int, *, apr_bps: int = HONEST_APR_BPS,
        draw_days: int = 30, lender: LocalAccount | None = None, category: str = CATEGORY,
        due_days: int = LOAN_DAYS, wallet: LocalAccount | None = None,
    ) -> tuple[int, str]:  # fmt: skip
        """Issue and fund a loan through the LoanFactory (the lender's own transaction), signed
        by the farmer's wallet (`farmer_wallet` unless given), the dev account `agent` its
        agent; total due follows the APR (simple interest over `due_days`)."""
        wallet = wallet or farmer_wallet(fid)
        now = chain_now(self.client)
        sender = self.lender if lender is None else self.client.sender_for(lender)
        self.invoices += 1
        interest = principal * apr_bps * due_days // (10_000 * 365)
        terms = EscrowTerms(
            farmer_id=fid, farmer=wallet.address, lender=sender.address,
            principal_fen=principal, budgets_fen={category: principal},
            schedule_hash=keccak(text=f"risk:{self.seed}:schedule:{self.invoices}"),
            disclosure_hash=keccak(text=f"risk:{self.seed}:disclosure:{self.invoices}"),
            draw_deadline=now + draw_days * DAY, total_due_fen=principal + interest,
            due_date=now + due_days * DAY, grace_days=10, default_days=30,
            agent=self.client.accounts[agent].address, apr_bps=apr_bps,
        )  # fmt: skip
        self.mint(sender.address, principal)
        self.desk.approve_factory(sender, principal)
        issued = self.desk.issue(terms, sender, self.desk.sign_acceptance(terms, wallet))
        return issued.loan_id, issued.escrow

    def order(
        self, index: int, escrow: str, merchant: str, fen: int, category: str = CATEGORY,
        agent: int | None = None,
    ) -> None:  # fmt: skip
        """The loan's agent (the farmer's cooperative unless `agent` names another dev account)
        orders a payment to a merchant."""
        self.invoices += 1
        invoice = keccak(text=f"risk:{self.seed}:invoice:{self.invoices}")
        sender = self.client.sender(self.coop_account(index) if agent is None else agent)
        self.desk.order_payment(escrow, merchant, category, fen, invoice, sender)

    def new_lender(self, case: Case) -> LocalAccount:
        """A small lender of the case's own (the factory's lender role, gas)."""
        lender = self.key(case, "lender")
        factory = self.desk.factory
        grant_role_once(self.client.sender(ADMIN), factory, LENDER_ROLE, lender.address)
        self.gas(lender.address)
        return lender

    def repay_all(self, index: int, escrow: str) -> None:
        """The farmer tops up its wallet and repays everything outstanding."""
        wallet = farmer_wallet(self.fid(index))
        owed = self.desk.state(escrow).outstanding_fen
        self.gas(wallet.address)
        self.mint(wallet.address, owed)
        payer = self.client.sender_for(wallet)
        payer.transact(self.desk.approve_call(escrow, owed))
        payer.transact(self.desk.repay_call(escrow, owed))

    def merchant_key(self, position: int) -> LocalAccount:
        """An approved demo merchant's key (dev account or derived from its name)."""
        m = MERCHANTS[position]
        return self.client.accounts[m.account] if m.account is not None else demo_key(
            f"merchant:{m.name}"
        )  # fmt: skip

    def renew_merchants(self, days: int) -> None:
        """Keep the fertilizer merchants approved through the plan (the demo moved the clock)."""
        until = chain_now(self.client) + 730 * DAY
        registrar = self.client.sender(DEV_REGISTRAR)
        for m in MERCHANTS:
            if m.category != CATEGORY:
                continue
            address = merchant_address(self.client, m)
            if self.registry.approval(address, CATEGORY).expires_at < chain_now(self.client) + (
                days * DAY
            ):
                self.registry.approve(address, CATEGORY, until, registrar)

    # ------------------------------------------------------------------ the patterns

    def cash_out(self, case: Case, label: Label) -> Steps:
        """Loan -> merchant; the merchant sends `share` back through `hops` transfers (fresh
        intermediaries, then the farmer's wallet) over `delay_s`."""
        index = self.farmer()
        principal = case.principal_yuan * 100
        loan, escrow = self.issue(index, principal)
        position = random.Random(case.case_id).choice((0, 1))
        merchant = self.merchant_key(position)
        self.order(index, escrow, merchant.address, principal)
        back = int(principal * case.share)
        hands = [merchant] + [self.key(case, f"hop{k}") for k in range(case.hops - 1)]
        target = farmer_wallet(self.fid(index)).address
        label.subject, label.loans = f"loan:{loan}", {loan}
        label.farmers = {hx(self.fid(index))}
        label.wallets = {hx(h.address) for h in hands[1:]} | {hx(target)}
        for k, hand in enumerate(hands):
            yield case.delay_s // case.hops
            self.gas(hand.address)
            to = hands[k + 1].address if k + 1 < len(hands) else target
            self.pay(hand, to, back)

    def circular(self, case: Case, label: Label) -> Steps:
        """Minted money goes round a cycle of `hops` fresh wallets `count` times, each hop
        keeping `share` of what it received, over `delay_s`."""
        ring = [self.key(case, f"ring{k}") for k in range(case.hops)]
        amount = case.principal_yuan * 100
        self.mint(ring[0].address, amount)
        label.subject = f"wallet:{hx(ring[0].address)}"
        label.wallets = {hx(w.address) for w in ring}
        steps = case.hops * case.count
        for step in range(steps):
            yield max(60, case.delay_s // steps)
            sender, receiver = ring[step % case.hops], ring[(step + 1) % case.hops]
            amount = int(amount * case.share)
            self.gas(sender.address)
            self.pay(sender, receiver.address, amount)

    def shared_wallet(self, case: Case, label: Label) -> Steps:
        """A second farmer on a farmer's wallet: newly registered on it (at the same or another
        cooperative), or an existing farmer's wallet changed to it."""
        index = self.farmer()
        wallet = farmer_wallet(self.fid(index)).address
        yield case.delay_s
        if case.variant == "changed":
            other = self.farmer()  # its own cooperative changes its wallet (any cooperative)
            RecordingService(self.client, self.coop_account(other)).set_farmer_wallet(
                self.fid(other), wallet
            )  # fmt: skip
            second = self.fid(other)
        else:
            second = keccak(text=f"risk:{self.seed}:{case.case_id}:farmer")
            account = self.coop_account(index)
            if case.variant == "other_cooperative":
                account = next(a for a in COOPERATIVE_ACCOUNTS if a != account)
            RecordingService(self.client, account).register_farmers(
                [FarmerRegistration(farmer=second, wallet=wallet)]
            )
        label.subject = f"wallet:{hx(wallet)}"
        label.farmers, label.wallets = {hx(self.fid(index)), hx(second)}, {hx(wallet)}

    def merchant_concentration(self, case: Case, label: Label) -> Steps:
        """A small lender's favourite: a merchant approved weeks before (so not new) takes
        `share` of each of the lender's `count` loans, the rest going to another approved
        merchant, the loans spread over `delay_s`."""
        lender, merchant = self.new_lender(case), self.key(case, "merchant")
        self.approve(merchant.address)
        label.subject = f"wallet:{hx(lender.address)}"
        label.wallets = {hx(lender.address), hx(merchant.address)}
        other = self.merchant_key(0).address
        yield 35 * DAY
        for _ in range(case.count):
            index = self.borrower()
            principal = case.principal_yuan * 100
            loan, escrow = self.issue(index, principal, lender=lender)
            favoured = int(principal * case.share)
            self.order(index, escrow, merchant.address, favoured)
            if principal > favoured:
                self.order(index, escrow, other, principal - favoured)
            label.loans.add(loan)
            label.farmers.add(hx(self.fid(index)))
            yield max(60, case.delay_s // case.count)

    def new_merchant_surge(self, case: Case, label: Label) -> Steps:
        """A merchant approved today takes `share` of `count` loans within `delay_s`."""
        merchant = self.key(case, "merchant")
        self.approve(merchant.address)
        label.subject, label.wallets = f"wallet:{hx(merchant.address)}", {hx(merchant.address)}
        for _ in range(case.count):
            yield max(60, case.delay_s // case.count)
            index = self.borrower()
            principal = case.principal_yuan * 100
            loan, escrow = self.issue(index, principal)
            self.order(index, escrow, merchant.address, int(principal * case.share))
            label.loans.add(loan)
            label.farmers.add(hx(self.fid(index)))

    def approve(self, merchant: str) -> None:
        """The platform's registrar approves a merchant for fertilizer (two years)."""
        until = chain_now(self.client) + 730 * DAY
        self.registry.approve(merchant, CATEGORY, until, self.client.sender(DEV_REGISTRAR))

    def background(self, days: int, per_merchant: int = 2) -> Steps:
        """Honest spending while the plan runs: every demo merchant is paid from ordinary loans
        now and then (a season does not stop for the cases), `per_merchant` loans each over
        `days` days; most of each loan's budget is spent."""
        rng = random.Random(f"{self.seed}:risk:background")
        plan = sorted((rng.randrange(days * DAY), k, m) for k in range(per_merchant)
                      for m in range(len(MERCHANTS)))  # fmt: skip
        now = 0
        for at, _, position in plan:
            yield at - now
            now = at
            m = MERCHANTS[position]
            index, principal = self.borrower(), rng.randint(10, 50) * 10_000
            _, escrow = self.issue(index, principal, category=m.category)
            spent = principal * rng.randint(85, 100) // 100
            self.order(index, escrow, merchant_address(self.client, m), spent, m.category)

    def loan_stacking(self, case: Case, label: Label) -> Steps:
        """Applications at several lenders, or (variant "identity") a second farmer id on the
        farmer's wallet borrowing while the first id's loan is open."""
        if case.variant == "identity":
            return self._second_identity(case, label)
        return self._applications(case, label)

    def _second_identity(self, case: Case, label: Label) -> Steps:
        """The farmer borrows and spends `share` of it; `delay_s` later another cooperative
        registers a second farmer id on the same wallet and a second lender lends to that id
        (the LoanFactory's one open loan per id does not see it)."""
        index = self.farmer()
        fid, wallet = self.fid(index), farmer_wallet(self.fid(index))
        principal = case.principal_yuan * 100
        merchant = self.merchant_key(random.Random(case.case_id).choice((0, 1))).address
        loan1, escrow1 = self.issue(index, principal)
        self.order(index, escrow1, merchant, int(principal * case.share))
        yield case.delay_s
        second = keccak(text=f"risk:{self.seed}:{case.case_id}:farmer")
        other = next(a for a in COOPERATIVE_ACCOUNTS if a != self.coop_account(index))
        RecordingService(self.client, other).register_farmers(
            [FarmerRegistration(farmer=second, wallet=wallet.address)]
        )
        loan2, escrow2 = self.issue_to(second, other, principal, lender=self.new_lender(case),
                                       wallet=wallet)  # fmt: skip
        self.order(index, escrow2, merchant, int(principal * case.share), agent=other)
        label.subject, label.loans = f"loan:{loan2}", {loan1, loan2}
        label.farmers, label.wallets = {hx(fid), hx(second)}, {hx(wallet.address)}
        label.also = {"shared_wallet"}

    def _applications(self, case: Case, label: Label) -> Steps:
        """The farmer consents to `count` lenders, which all decide on it (the service's own
        decision function) within `delay_s`."""
        index = self.farmer()
        fid, wallet = self.fid(index), farmer_wallet(self.fid(index))
        orgs = [self._lender_org(k) for k in range(case.count)]
        self.gas(wallet.address)
        expires = chain_now(self.client) + 365 * DAY
        consent = ConsentService(self.client)
        for org in orgs:
            self.client.sender_for(wallet).transact(
                consent.contract.functions.grantConsent(fid, org.chain_address, expires)
            )
        index_chain(self.client, self.settings.database_url)  # decisions read the index
        label.subject, label.farmers = f"farmer:{hx(fid)}", {hx(fid)}
        for k, org in enumerate(orgs):
            if k:
                yield max(60, case.delay_s // (case.count - 1))
            lenders.make_decision(self.engine, self.settings, self.client, org, hx(fid))

    def _lender_org(self, k: int) -> Organisation:
        """The demo's lender (k = 0) or another lender of the service (derived keys)."""
        if k == 0:
            return ensure_organisation(self.settings, Role.LENDER, "Rural commercial bank 农商银行",
                                       self.client.accounts[DEV_LENDER])  # fmt: skip
        name = SECOND_LENDERS[(k - 1) % len(SECOND_LENDERS)]
        return ensure_organisation(self.settings, Role.LENDER, name, demo_key(f"lender:{name}"))

    def rapid_reborrow(self, case: Case, label: Label) -> Steps:
        """Borrow (a one-day draw window), draw at once, repay two days later; `delay_s` after
        that borrow about as much again (`share` of the first principal), drawn within the
        hour."""
        index = self.farmer()
        first = case.principal_yuan * 100
        merchant = self.merchant_key(0).address
        loan1, escrow1 = self.issue(index, first, draw_days=1)
        self.order(index, escrow1, merchant, first)
        yield 2 * DAY  # a loan closes as repaid only once its draw window is over
        self.repay_all(index, escrow1)
        yield case.delay_s
        second = int(first * case.share)
        loan2, escrow2 = self.issue(index, second)
        yield 1_800
        self.order(index, escrow2, merchant, second)
        label.subject, label.loans = f"loan:{loan2}", {loan1, loan2}
        label.farmers = {hx(self.fid(index))}

    def harvest_implausible(self, case: Case, label: Label) -> Steps:
        """A plot yielding `factor` times its cooperative's season, (variant "yields") a new
        processor booking made tea at the mass-balance bound, or (variant "pledged") a farmer
        borrowing `factor` times all its leaf is worth, due within weeks."""
        if case.variant == "yields":
            return self._pinned_yields(case, label)
        if case.variant == "pledged":
            return self._over_pledged(case, label)
        return self._plot_yield(case, label)

    def _over_pledged(self, case: Case, label: Label) -> Steps:
        """The farmer keeps back one more picking of its latest priced season (a lot it holds),
        then borrows `factor` times what all its leaf of the year is worth at its cooperative's
        prices, due in `delay_s`, and spends `share` of it at once: whatever it holds is
        pledged several times over."""
        index = self.farmer()
        fid = self.fid(index)
        index_chain(self.client, self.settings.database_url)
        picked, _ = _leaf_worth(self.settings.database_url, fid)
        if picked is None:
            raise InjectionError("the farmer has no leaf in a season that sold anything")
        kept = HarvestRecord(farmer=fid, plot=self.region.plot_ids[index][0], grams=3_000,
                             grade=3, picked_at=picked + HOUR,
                             record_ref=f"{case.case_id}-kept")  # fmt: skip
        coop = RecordingService(self.client, self.coop_account(index))
        lots = [o.lot for o in coop.record_harvests([kept]).outcomes if o.lot]
        index_chain(self.client, self.settings.database_url)
        _, worth = _leaf_worth(self.settings.database_url, fid)
        principal = math.ceil(worth * case.factor / 100) * 100  # whole yuan, rounded up
        loan, escrow = self.issue(index, principal, draw_days=1,
                                  due_days=max(2, case.delay_s // DAY))  # fmt: skip
        merchant = self.merchant_key(random.Random(case.case_id).choice((0, 1))).address
        self.order(index, escrow, merchant, int(principal * case.share))
        label.subject, label.loans = f"lot:{hx(lots[0])}", {loan}
        label.farmers, label.lots = {hx(fid)}, {hx(lot) for lot in lots}
        yield 0

    def _pinned_yields(self, case: Case, label: Label) -> Steps:
        """A processor (a fresh wallet given the role) takes `count` small lots of one farmer's
        leaf and books each step's made tea at `share` of the TeaTrace yield bound."""
        index = self.farmer()
        plant = self.key(case, "processor")
        self.gas(plant.address)
        tea = tea_trace(self.client)
        self.client.sender(ADMIN).transact(tea.functions.grantRole(PROCESSOR_ROLE, plant.address))
        bound = int(tea.functions.maxYieldBps().call())
        picked = int(datetime(self.region.season.year, 9, 20, 9, tzinfo=UTC).timestamp())
        records = [
            HarvestRecord(
                farmer=self.fid(index), plot=self.region.plot_ids[index][0],
                grams=2_000 + 250 * k, grade=3, picked_at=picked + k * HOUR,
                record_ref=f"{case.case_id}-leaf-{k}",
            )
            for k in range(case.count)
        ]  # fmt: skip
        coop = RecordingService(self.client, self.coop_account(index))
        lots = [o.lot for o in coop.record_harvests(records).outcomes if o.lot]
        coop.ship_many(lots, plant.address)
        factory = RecordingService(self.client, plant)
        factory.receive_many(lots)
        for k, (lot, record) in enumerate(zip(lots, records, strict=True)):
            made = int(record.grams * bound * case.share) // 10_000
            data = keccak(text=f"{case.case_id}:made:{k}")
            factory.process([lot], [ProcessOutput(grams=made, data_hash=data)])
            yield HOUR
        label.subject = f"wallet:{hx(plant.address)}"
        label.wallets = {hx(plant.address)}
        label.farmers = {hx(self.fid(index))}
        label.lots = {hx(lot) for lot in lots}

    def _plot_yield(self, case: Case, label: Label) -> Steps:
        """Extra pickings on one plot until its autumn flush is `factor` times its cooperative's
        autumn yield per mu (picked in the past season, as a backdated record would be)."""
        index = self.farmer()
        season = self.region.season
        farmer = season.farmers[index]
        plot = max(range(len(farmer.plots)), key=lambda k: farmer.plots[k].area_centi_mu)
        area = farmer.plots[plot].area_centi_mu
        typical = _coop_grams_per_centi_mu(self.region, farmer.cooperative, FLUSH)
        have = sum(h.grams for h in season.harvests
                   if h.farmer == index and h.plot == plot and h.flush == FLUSH)  # fmt: skip
        extra = int(case.factor * typical * area) - have
        picks = 3
        base = datetime(season.year, 9, 10, 9, tzinfo=UTC)
        records = [
            HarvestRecord(
                farmer=self.fid(index), plot=self.region.plot_ids[index][plot],
                grams=extra // picks, grade=3,
                picked_at=int(base.timestamp()) + k * 7 * DAY, record_ref=f"{case.case_id}-{k}",
            )
            for k in range(picks)
        ]  # fmt: skip
        report = RecordingService(self.client, self.coop_account(index)).record_harvests(records)
        label.subject = f"plot:{hx(self.region.plot_ids[index][plot])}"
        label.farmers = {hx(self.fid(index))}
        label.lots = {hx(o.lot) for o in report.outcomes if o.lot}
        yield 0

    def apr_above_cap(self, case: Case, label: Label) -> Steps:
        """A loan whose terms carry an APR `apr_excess_bps` above the cap in force, sent to the
        LoanFactory directly (the service refuses such terms)."""
        index = self.farmer()
        day = datetime.fromtimestamp(chain_now(self.client), UTC).date()
        _, cap_pct, _, _ = binding_cap(day, DEFAULT_POLICY, lpr_through(day))
        apr = int(Decimal(cap_pct) * 100) + case.apr_excess_bps
        loan, _ = self.issue(index, case.principal_yuan * 100, apr_bps=apr)
        label.subject, label.loans = f"loan:{loan}", {loan}
        label.farmers = {hx(self.fid(index))}
        yield 0

    # ------------------------------------------------------------------ the plan

    def play(self, cases: Sequence[Case], stagger_s: int = HOUR) -> list[Label]:
        """Play every case on one clock: each starts `stagger_s` after the one before and waits
        its own delays; a case that fails is labelled skipped with the reason."""
        self.renew_merchants(120)
        labels = [Label(c) for c in cases]
        start = chain_now(self.client)
        queue: list[tuple[int, int, Steps]] = []
        if any(c.pattern in BASELINE_PATTERNS for c in cases):
            queue.append((start, -1, self.background(BACKGROUND_DAYS)))
        for n, label in enumerate(labels):
            steps: Callable[[Case, Label], Steps] = getattr(self, label.case.pattern)
            queue.append((start + n * stagger_s, n, steps(label.case, label)))
        heapq.heapify(queue)
        while queue:
            at, n, steps = heapq.heappop(queue)
            advance_to(self.client, at)
            try:
                wait = next(steps)
            except StopIteration:
                continue
            except (ChainError, LendingError, TraceabilityError, InjectionError) as exc:
                if n < 0:  # the background stops (no farmer left): the cases go on
                    continue
                labels[n].skipped = f"{type(exc).__name__}: {exc}"
                continue
            heapq.heappush(queue, (chain_now(self.client) + wait, n, steps))
        return labels


def lpr_through(day: date) -> LprTable:
    """The LPR table the service prices with, assumed unchanged through `day` if it ends before
    (the demo's own assumption, tealedger.demo.lending.assume_lpr_through: its clock runs ahead
    of the published fixings)."""
    table = load_lpr_table()
    return table if table.covers_through >= day else table.assuming_unchanged_through(day)


def _coop_grams_per_centi_mu(region: Region, cooperative: int, flush: str) -> Fraction:
    """The cooperative's flush: fresh leaf per centi-mu over its members' plots."""
    season = region.season
    members = {i for i, f in enumerate(season.farmers) if f.cooperative == cooperative}
    grams = sum(h.grams for h in season.harvests if h.farmer in members and h.flush == flush)
    area = sum(season.farmers[i].area_centi_mu for i in members)
    return Fraction(grams, max(1, area))


def _settled_before(client: ChainClient, database_url: str, days: int) -> set[bytes]:
    """Farmer ids whose every loan closed at least `days` before the chain's time."""
    index_chain(client, database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            loans = load_loans(conn)
    finally:
        engine.dispose()
    cutoff = chain_now(client) - days * DAY
    latest: dict[bytes, int | None] = {}
    for rec in loans.values():
        closed = rec.repaid_at() or rec.closed_at()
        before = latest.get(rec.farmer, 0)
        latest[rec.farmer] = None if closed is None or before is None else max(before, closed)
    return {farmer for farmer, closed in latest.items() if closed is not None and closed <= cutoff}


def _leaf_worth(database_url: str, fid: bytes) -> tuple[int | None, Fraction]:
    """The picking time of the farmer's latest harvest in a cooperative-season that sold
    something (None if none did), and all the farmer's leaf at its cooperative-seasons' average
    prices (fen, exact; unpriced seasons are worth nothing yet)."""
    season = (CoopSeason.cooperative, CoopSeason.season, CoopSeason.fresh_grams,
              CoopSeason.income_fen)  # fmt: skip
    leaf = (Harvest.cooperative, Harvest.season, Harvest.grams, Harvest.picked_at)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            seasons = conn.execute(select(*season)).all()
            rows = conn.execute(select(*leaf).where(Harvest.farmer == fid)).all()
    finally:
        engine.dispose()
    prices = {(bytes(c), s): Fraction(inc, g) for c, s, g, inc in seasons if g > 0 and inc > 0}
    priced = [(bytes(c), s, g, at) for c, s, g, at in rows if (bytes(c), s) in prices]
    worth = sum((g * prices[(c, s)] for c, s, g, _ in priced), Fraction(0))
    return (max(at for *_, at in priced) if priced else None), worth


# ---------------------------------------------------------------------------------- scanning


def scan_findings(
    client: ChainClient, settings: ApiSettings, names: Sequence[str], extra: Mapping[str, Any] = {}
) -> list[Finding]:
    """Index the chain, then run the named rules over it (the service's database beside)."""
    index_chain(client, settings.database_url)
    indexer = make_engine(settings.database_url)
    service = open_database(settings.database_url)
    try:
        with indexer.connect() as conn, service.connect() as svc:
            return risk_scan.find(risk_scan.context(conn, svc, extra=extra), names)
    finally:
        indexer.dispose()


def registered(patterns: Sequence[str]) -> list[str]:
    """The patterns whose rule is registered now."""
    return [p for p in patterns if p in RULES]


# ---------------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class PatternScore:
    """One pattern's figures on the injected run."""

    pattern: str
    injected: int
    detected: int
    findings: int
    true_findings: int
    skipped: int = 0
    registered: bool = True

    @property
    def recall(self) -> Fraction | None:
        """Injected cases found, over injected cases."""
        return Fraction(self.detected, self.injected) if self.injected else None

    @property
    def precision(self) -> Fraction | None:
        """Findings about an injected case, over new findings of the rule."""
        return Fraction(self.true_findings, self.findings) if self.findings else None


def score(
    patterns: Sequence[str],
    labels: Sequence[Label],
    findings: Sequence[Finding],
    clean: Sequence[Finding],
) -> list[PatternScore]:
    """Per pattern: cases detected, and findings (those not already on the clean run) that
    are about a case of the pattern or a case made of it too (`Label.also`)."""
    before = {f.key for f in clean}
    out = []
    for pattern in patterns:
        cases = [x for x in labels if x.pattern == pattern]
        played = [x for x in cases if x.skipped is None]
        skipped = len(cases) - len(played)
        if pattern not in RULES:
            out.append(PatternScore(pattern, len(played), 0, 0, 0, skipped, registered=False))
            continue
        new = [f for f in findings if f.rule == pattern and f.key not in before]
        true = [f for f in new if any(x.matches(f) for x in labels if x.shows(pattern))]
        detected = [x for x in played if any(x.matches(f) for f in new)]
        out.append(PatternScore(pattern, len(played), len(detected), len(new), len(true), skipped))
    return out


def clean_rate(findings: Sequence[Finding], farmers: int) -> Fraction:
    """Findings on an honest season per 100 farmers."""
    return Fraction(100 * len(findings), max(1, farmers))


# ---------------------------------------------------------------------------------- one run


@dataclass
class GroundTruth:
    """An honest season scanned, the plan played on it, scanned again, and the scores."""

    farmers: int
    seed: int
    rules: list[str]
    clean: list[Finding]
    labels: list[Label]
    findings: list[Finding]
    scores: list[PatternScore]
    seconds: float

    @property
    def clean_per_100(self) -> Fraction:
        """Findings of the honest season per 100 farmers."""
        return clean_rate(self.clean, self.farmers)


def honest_world(client: ChainClient, farmers: int, seed: int, settings: ApiSettings) -> Region:
    """The demo's season and lending on a deployed chain (quietly)."""
    quiet = Console(quiet=True)
    region, season = run_season(client, farmers, seed, quiet, settings)
    run_lending(client, region, season, settings, quiet)
    return region


def ground_truth(
    workdir: Path,
    farmers: int,
    seed: int,
    cases: Sequence[Case],
    patterns: Sequence[str] = PATTERNS,
) -> GroundTruth:
    """Start a throw-away anvil under `workdir`, build the honest world, scan it, play `cases`,
    scan again and score every pattern (rules not registered are scored as such)."""
    started = time.perf_counter()
    node = AnvilNode(workdir / "node", PROJECT_ROOT, free_port(), DEV_MNEMONIC, accounts=10)
    node.start()
    try:
        chain = ChainSettings(backend="anvil", data_dir=workdir / "chain", port=node.port,
                              mnemonic=DEV_MNEMONIC, accounts=10)  # fmt: skip
        client = ChainClient(chain, node)
        chain.data_dir.mkdir(parents=True, exist_ok=True)
        deploy_system(client)
        settings = ApiSettings(environment="test", data_dir=workdir,
                               database_url=f"sqlite:///{workdir / 'service.db'}")  # fmt: skip
        region = honest_world(client, farmers, seed, settings)
        rules = registered(patterns)
        clean = scan_findings(client, settings, rules, _extra(client))
        labels = Injector(client, region, settings, seed).play(cases)
        found = scan_findings(client, settings, rules, _extra(client))
    finally:
        node.stop()
    scores = score(patterns, labels, found, clean)
    return GroundTruth(farmers, seed, rules, clean, labels, found, scores,
                       time.perf_counter() - started)  # fmt: skip


def _extra(client: ChainClient) -> dict[str, Any]:
    """What the scan is given besides the chain: the LPR table through the chain's date."""
    return {"lpr": lpr_through(datetime.fromtimestamp(chain_now(client), UTC).date())}
