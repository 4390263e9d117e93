"""Issue purpose-bound loans and move their money: escrow, merchant payments, repayment.

The "1 second" path: an approved decision (`EscrowTerms`) becomes a funded LoanEscrow clone in one
transaction (`LoanFactory.issueAndFundLoan`), and the first merchant payment is sent right behind
it without waiting, to the escrow address CREATE2 makes known in advance
(`LoanDesk.disburse_first_payment`). Reverts surface as the named errors of lending.loans.errors.

No loan exists without the farmer's acceptance: the farmer's TeaTrace wallet signs the EIP-712
`LoanAcceptance` of the terms (`LoanDesk.acceptance_typed_data` is the one place that builds it),
and the lender relays that signature with the issuing transaction (docs/disbursement.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import IntEnum
from types import MappingProxyType
from typing import Any
from weakref import WeakKeyDictionary

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from chain.client import ChainClient
from chain.clock import chain_now
from chain.eip712 import typed_data
from chain.errors import ContractRevertError
from chain.events import EventDecoder, event_decoder
from chain.sender import PendingTx, Sender
from chain.views import read_many, read_one, view
from lending.loans.contracts import LOAN_ESCROW, LOAN_FACTORY, PAYMENT_TOKEN
from lending.loans.errors import (
    LoanTermsError,
    OrderNotExecutedError,
    from_revert,
    translate_reverts,
)
from lending.loans.gas import (
    APPROVE_GAS,
    ORDER_GAS,
    REPAY_GAS,
    RETURN_UNSPENT_GAS,
    issue_gas,
)

"""Gas for an order sent before its escrow exists (no estimate possible); it uses ~110-190k."""
MAX_CATEGORIES = 16
MAX_AMOUNT_FEN = 2**88 - 1
MAX_APR_BPS = 2**16 - 1
ZERO_ADDRESS = "0x" + "00" * 20
ACCEPTANCE_TTL = 7 * 86_400
"""How long a farmer's signed acceptance stays relayable (seconds of chain time)."""
DOMAIN_NAME = "TealedgerLoans"
DOMAIN_VERSION = "1"
ACCEPTANCE_TYPE: tuple[tuple[str, str], ...] = (
    ("farmerId", "bytes32"),
    ("lender", "address"),
    ("farmer", "address"),
    ("agent", "address"),
    ("principal", "uint256"),
    ("totalDue", "uint256"),
    ("aprBps", "uint16"),
    ("disclosureHash", "bytes32"),
    ("scheduleHash", "bytes32"),
    ("categories", "bytes32[]"),
    ("budgets", "uint256[]"),
    ("drawDeadline", "uint64"),
    ("dueDate", "uint64"),
    ("graceDays", "uint16"),
    ("defaultDays", "uint16"),
    ("mode", "uint8"),
    ("walletEpoch", "uint256"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
"""LoanFactory.ACCEPTANCE_TYPEHASH's fields, in order."""


class LoanStatus(IntEnum):
    """ILoanEscrow.LoanStatus."""

    NONE = 0
    ISSUED = 1
    ACTIVE = 2
    OVERDUE = 3
    DEFAULTED = 4
    REPAID = 5
    WRITTEN_OFF = 6
    CANCELLED = 7


class ConfirmationMode(IntEnum):
    """ILoanEscrow.ConfirmationMode: when an ordered payment leaves the escrow."""

    IMMEDIATE = 0
    MERCHANT_CONFIRMS = 1
    BORROWER_CONFIRMS = 2


class OrderStatus(IntEnum):
    """ILoanEscrow.OrderStatus."""

    NONE = 0
    PENDING = 1
    RELEASED = 2
    CANCELLED = 3
    ACCEPTED = 4


def category_id(category: str | bytes) -> bytes:
    """keccak256 of a category name (as MerchantRegistry.registerCategory), or a 32-byte id."""
    if isinstance(category, bytes):
        if len(category) != 32:
            raise LoanTermsError(f"a category id is 32 bytes, got {len(category)}")
        return category
    if not category:
        raise LoanTermsError("a category name cannot be empty")
    return keccak(text=category)


def _jsonable(value: Any) -> Any:
    """Dataclasses and pydantic models as plain data; dates, Decimals and enums as text."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


def document_hash(document: Any) -> bytes:
    """keccak256 of a document: bytes as given, text as UTF-8, anything else as canonical JSON."""
    if isinstance(document, bytes):
        return keccak(document)
    if isinstance(document, str):
        return keccak(text=document)
    if hasattr(document, "model_dump"):
        document = document.model_dump(mode="json")
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=_jsonable)
    return keccak(text=text)


def apr_bps(apr_pct: Decimal) -> int:
    """An APR in percent as whole basis points (half up: the farmer is shown the higher rate)."""
    return int((Decimal(apr_pct) * 100).to_integral_value(ROUND_HALF_UP))


def end_of_day(day: date) -> int:
    """Unix time of the last second of `day` (UTC): a due date is met by paying that day."""
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
    return int(midnight.timestamp()) - 1


def _is_fen(value: object) -> bool:
    """A non-negative int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class EscrowTerms:
    """An approved credit decision, ready to be issued on chain (amounts in fen, times unix)."""

    farmer_id: bytes
    farmer: str
    lender: str
    principal_fen: int
    budgets_fen: Mapping[str | bytes, int]
    schedule_hash: bytes
    disclosure_hash: bytes
    draw_deadline: int
    total_due_fen: int
    due_date: int
    grace_days: int = 0
    default_days: int = 30
    agent: str | None = None
    mode: ConfirmationMode = ConfirmationMode.IMMEDIATE
    apr_bps: int = 0
    _categories: tuple[tuple[bytes, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check what the factory checks, so a bad decision fails before anything is sent."""
        object.__setattr__(self, "budgets_fen", MappingProxyType(dict(self.budgets_fen)))
        self._check_parties()
        self._check_amounts()
        self._check_dates()
        ids = sorted((category_id(c), v) for c, v in self.budgets_fen.items())
        if len({c for c, _ in ids}) != len(ids):
            raise LoanTermsError("two budget entries name the same category")
        object.__setattr__(self, "_categories", tuple(ids))

    def _check_parties(self) -> None:
        """Ids and addresses."""
        for name in ("farmer_id", "schedule_hash", "disclosure_hash"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise LoanTermsError(f"{name} must be 32 bytes")
        if self.farmer_id == bytes(32):
            raise LoanTermsError("farmer_id is zero: use the farmer's TeaTrace id")
        for name in ("farmer", "lender", "agent"):
            value = getattr(self, name)
            if value is not None and not Web3.is_address(value):
                raise LoanTermsError(f"{name} {value!r} is not an address")
        farmer, lender = self.farmer.lower(), self.lender.lower()
        agent = (self.agent or "").lower()
        if lender in (farmer, agent):
            raise LoanTermsError("the lender cannot be the farmer or the agent")
        if agent == farmer:
            raise LoanTermsError("the agent cannot be the farmer")

    def _check_amounts(self) -> None:
        """Principal, total due and budgets."""
        if not _is_fen(self.principal_fen) or self.principal_fen == 0:
            raise LoanTermsError(f"principal_fen must be an int > 0, got {self.principal_fen!r}")
        if not _is_fen(self.total_due_fen) or self.total_due_fen > MAX_AMOUNT_FEN:
            raise LoanTermsError(f"total_due_fen must be an int in 0..{MAX_AMOUNT_FEN}")
        if self.total_due_fen < self.principal_fen:
            raise LoanTermsError(
                f"total due {self.total_due_fen} fen is below the principal {self.principal_fen}"
            )
        if not 1 <= len(self.budgets_fen) <= MAX_CATEGORIES:
            raise LoanTermsError(f"budget 1 to {MAX_CATEGORIES} categories")
        if any(not _is_fen(v) or v == 0 for v in self.budgets_fen.values()):
            raise LoanTermsError("every category budget must be a positive int of fen")
        total = sum(self.budgets_fen.values())
        if total != self.principal_fen:
            raise LoanTermsError(
                f"budgets add up to {total} fen but the principal is {self.principal_fen}: "
                "every fen of principal is budgeted to a category"
            )

    def _check_dates(self) -> None:
        """Draw deadline before due date; day counts fit uint16."""
        if self.due_date < self.draw_deadline:
            raise LoanTermsError("the due date must not precede the draw deadline")
        for name in ("grace_days", "default_days", "apr_bps"):
            value = getattr(self, name)
            if not _is_fen(value) or value > 65535:
                raise LoanTermsError(f"{name} must be an int in 0..65535")

    @property
    def categories(self) -> tuple[bytes, ...]:
        """Category ids in the order the factory needs (ascending)."""
        return tuple(c for c, _ in self._categories)

    def params(self) -> tuple[Any, ...]:
        """The ILoanEscrow.LoanParams tuple."""
        return (
            self.farmer_id,
            to_checksum_address(self.farmer),
            to_checksum_address(self.agent or ZERO_ADDRESS),
            self.principal_fen,
            [c for c, _ in self._categories],
            [v for _, v in self._categories],
            self.schedule_hash,
            self.disclosure_hash,
            self.draw_deadline,
            self.total_due_fen,
            self.due_date,
            self.grace_days,
            self.default_days,
            int(self.mode),
            self.apr_bps,
        )

    def acceptance_message(self, nonce: int, deadline: int, epoch: int) -> dict[str, Any]:
        """The EIP-712 LoanAcceptance message the farmer's wallet signs (JSON-friendly)."""
        return {
            "farmerId": "0x" + self.farmer_id.hex(),
            "lender": to_checksum_address(self.lender),
            "farmer": to_checksum_address(self.farmer),
            "agent": to_checksum_address(self.agent or ZERO_ADDRESS),
            "principal": self.principal_fen,
            "totalDue": self.total_due_fen,
            "aprBps": self.apr_bps,
            "disclosureHash": "0x" + self.disclosure_hash.hex(),
            "scheduleHash": "0x" + self.schedule_hash.hex(),
            "categories": ["0x" + c.hex() for c, _ in self._categories],
            "budgets": [v for _, v in self._categories],
            "drawDeadline": self.draw_deadline,
            "dueDate": self.due_date,
            "graceDays": self.grace_days,
            "defaultDays": self.default_days,
            "mode": int(self.mode),
            "walletEpoch": epoch,
            "nonce": nonce,
            "deadline": deadline,
        }

    @classmethod
    def from_disclosure(
        cls,
        disclosure: Any,
        *,
        farmer_id: bytes,
        farmer: str,
        lender: str,
        budgets_fen: Mapping[str | bytes, int],
        draw_deadline: int,
        grace_days: int = 0,
        default_days: int = 30,
        agent: str | None = None,
        mode: ConfirmationMode = ConfirmationMode.IMMEDIATE,
    ) -> EscrowTerms:
        """Terms from a lending.pricing.disclosure.Disclosure: the escrow holds the amount financed
        (what the farmer receives) and the total due is the total repayment."""
        return cls(
            farmer_id=farmer_id,
            farmer=farmer,
            lender=lender,
            principal_fen=disclosure.amount_financed_fen,
            budgets_fen=budgets_fen,
            schedule_hash=document_hash([_jsonable(x) for x in disclosure.installments]),
            disclosure_hash=document_hash(disclosure),
            draw_deadline=draw_deadline,
            total_due_fen=disclosure.total_repayment_fen,
            due_date=end_of_day(disclosure.maturity),
            grace_days=grace_days,
            default_days=default_days,
            agent=agent,
            mode=mode,
            apr_bps=apr_bps(disclosure.apr_regz_pct),
        )


@dataclass(frozen=True)
class Acceptance:
    """The farmer's signed acceptance of a loan's terms (ILoanFactory.Acceptance)."""

    nonce: int
    deadline: int
    signature: bytes

    def as_tuple(self) -> tuple[int, int, bytes]:
        """The ILoanFactory.Acceptance tuple."""
        return (self.nonce, self.deadline, self.signature)


@dataclass(frozen=True)
class IssuedLoan:
    """A loan on chain."""

    loan_id: int
    escrow: str
    funded: bool
    tx_hash: str
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class OrderResult:
    """A merchant payment order: paid at once (Immediate mode) or reserved."""

    order_id: int
    escrow: str
    merchant: str
    amount_fen: int
    paid: bool
    tx_hash: str
    gas_used: int


@dataclass(frozen=True)
class PaymentOrder:
    """One payment order of an escrow, as the escrow keeps it."""

    order_id: int
    merchant: str
    amount_fen: int
    status: OrderStatus
    category: bytes
    invoice_hash: bytes


@dataclass(frozen=True)
class LoanState:
    """An escrow's terms, status and money movements (fen)."""

    escrow: str
    loan_id: int
    status: LoanStatus
    farmer_id: bytes
    lender: str
    farmer: str
    agent: str | None
    principal_fen: int
    total_due_fen: int
    draw_deadline: int
    due_date: int
    mode: ConfirmationMode
    funded_fen: int
    paid_fen: int
    reserved_fen: int
    returned_fen: int
    available_fen: int
    repaid_fen: int
    amount_due_fen: int
    outstanding_fen: int


@dataclass(frozen=True)
class FirstPayment:
    """The end of the fast path: a funded loan and its first merchant payment."""

    loan: IssuedLoan
    order: OrderResult
    pipelined: bool


def _loan_state(escrow: str, t: Sequence[Any], a: Sequence[Any], status: int) -> LoanState:
    """A LoanState from an escrow's terms(), accounting() and status()."""
    return LoanState(
        escrow=escrow,
        loan_id=t[0],
        status=LoanStatus(status),
        farmer_id=bytes(t[1]),
        lender=str(t[2]),
        farmer=str(t[3]),
        agent=None if int(t[4], 16) == 0 else str(t[4]),
        principal_fen=t[5],
        total_due_fen=t[6],
        draw_deadline=t[7],
        due_date=t[8],
        mode=ConfirmationMode(t[11]),
        funded_fen=a[0],
        paid_fen=a[1],
        reserved_fen=a[2],
        returned_fen=a[3],
        available_fen=a[4],
        repaid_fen=a[5],
        amount_due_fen=a[6],
        outstanding_fen=a[7],
    )


def events_of(contract: Contract, event: str, receipt: TxReceipt) -> list[Any]:
    """Decoded `event` logs that `contract` itself emitted in `receipt`."""
    decoded = contract.events[event]().process_receipt(receipt, errors=DISCARD)
    return [e for e in decoded if e["address"] == contract.address]


def _loan_issued(factory: Contract, receipt: TxReceipt) -> tuple[int, str]:
    """(loan id, escrow) from a receipt's LoanIssued event."""
    events = events_of(factory, "LoanIssued", receipt)
    if not events:
        raise OrderNotExecutedError("the issuing transaction emitted no LoanIssued event")
    args = events[0]["args"]
    return int(args["loanId"]), str(args["escrow"])


_BINDINGS_OF: WeakKeyDictionary[ChainClient, dict[str, tuple[str, str]]] = WeakKeyDictionary()
"""The payment token and merchant registry of each LoanFactory, by client and factory address."""


def _read(client: ChainClient, contract: Contract, name: str, *args: Any) -> Any:
    """The one output of a view of `contract` (chain.views.read_one): every row of an order
    file, a farmer's acceptance and the repayments read these."""
    return read_one(client.w3, contract.address, contract.abi, name, *args)


class LoanDesk:
    """A lender's, farmer's or cooperative's handle on the loan contracts of one factory."""

    def __init__(self, client: ChainClient, factory: str = LOAN_FACTORY) -> None:
        self.client = client
        if Web3.is_address(factory):
            self.factory = client.contract(LOAN_FACTORY, factory)
        else:
            self.factory = client.contract(factory)
        # Immutable in the factory: asked once per client and factory, not on every request.
        known = _BINDINGS_OF.setdefault(client, {})
        if self.factory.address not in known:
            known[self.factory.address] = self.factory.functions.bindings().call()
        token, registry = known[self.factory.address]
        self.token = client.contract(PAYMENT_TOKEN, token)
        self.registry_address = str(registry)
        self._escrow_events: EventDecoder | None = None

    # -------------------------------------------------------------- contracts

    @property
    def _escrow_abi(self) -> list[dict[str, Any]]:
        """The LoanEscrow ABI, for reads that need no contract object."""
        return self.client.artifacts[LOAN_ESCROW].abi

    def _escrow_read(self, escrow: str, name: str, *args: Any) -> Any:
        """The one output of the escrow's view `name` (chain.views.read_one; no contract object
        is built for it)."""
        return read_one(self.client.w3, to_checksum_address(escrow), self._escrow_abi, name, *args)

    def escrow(self, address: str) -> Contract:
        """The LoanEscrow clone at `address`, from the client's bounded cache (building one takes
        ms; each holds about 240 KiB, so a desk that kept every escrow it met grew without end)."""
        return self.client.contract(LOAN_ESCROW, address)

    def predict_escrow(self, terms: EscrowTerms) -> str:
        """Where `terms` will be issued (CREATE2: lender, farmer id, schedule hash)."""
        fn = self.factory.functions.predictEscrow(
            to_checksum_address(terms.lender), terms.farmer_id, terms.schedule_hash
        )
        return str(fn.call())

    # -------------------------------------------------------------- the farmer's acceptance

    def acceptance_nonce(self, farmer_id: bytes) -> int:
        """The nonce the farmer's next acceptance must carry."""
        return int(self._view("acceptanceNonce", farmer_id))

    def acceptance_epoch(self, farmer_id: bytes) -> int:
        """The farmer's wallet epoch in TeaTrace, which the acceptance signs: a signature made
        before a wallet change never validates after it, even if the old wallet comes back."""
        return int(self._view("acceptanceEpoch", farmer_id))

    def _view(self, name: str, *args: Any) -> Any:
        """The factory's view `name` (its one output)."""
        return _read(self.client, self.factory, name, *args)

    def acceptance_deadline(self, ttl: int = ACCEPTANCE_TTL) -> int:
        """A signature deadline `ttl` seconds after the chain's latest block (not the server's)."""
        return chain_now(self.client.w3) + ttl

    def acceptance_typed_data(
        self, terms: EscrowTerms, nonce: int, deadline: int
    ) -> dict[str, Any]:
        """The full EIP-712 typed data (eth_signTypedData_v4) of the farmer's acceptance."""
        domain = (DOMAIN_NAME, DOMAIN_VERSION, self.client.w3.eth.chain_id, self.factory.address)
        fields = [{"name": n, "type": t} for n, t in ACCEPTANCE_TYPE]
        message = terms.acceptance_message(nonce, deadline, self.acceptance_epoch(terms.farmer_id))
        return typed_data(domain, "LoanAcceptance", fields, message)

    def _signable(self, terms: EscrowTerms, nonce: int, deadline: int) -> SignableMessage:
        """The EIP-712 message as eth_account signs it."""
        return encode_typed_data(full_message=self.acceptance_typed_data(terms, nonce, deadline))

    def acceptance_digest(self, terms: EscrowTerms, nonce: int, deadline: int) -> bytes:
        """The EIP-712 digest (what LoanFactory.acceptanceDigest returns for the same terms)."""
        m = self._signable(terms, nonce, deadline)
        return keccak(b"\x19" + m.version + m.header + m.body)

    def sign_acceptance(
        self,
        terms: EscrowTerms,
        wallet: LocalAccount,
        *,
        deadline: int | None = None,
        nonce: int | None = None,
    ) -> Acceptance:
        """Sign the terms with the farmer's wallet (development and tests: a real farmer signs
        the typed data in their own wallet)."""
        nonce = self.acceptance_nonce(terms.farmer_id) if nonce is None else nonce
        deadline = self.acceptance_deadline() if deadline is None else deadline
        signed = wallet.sign_message(self._signable(terms, nonce, deadline))
        return Acceptance(nonce, deadline, bytes(signed.signature))

    def acceptance_signer(self, terms: EscrowTerms, acceptance: Acceptance) -> str:
        """The address that signed `acceptance` of `terms` (garbage in: LoanTermsError)."""
        message = self._signable(terms, acceptance.nonce, acceptance.deadline)
        try:
            return str(Account.recover_message(message, signature=acceptance.signature))
        except Exception as exc:  # eth_keys raises several types for malformed signatures
            raise LoanTermsError(f"the signature is not a valid signature: {exc}") from exc

    def check_acceptance(self, terms: EscrowTerms, acceptance: Acceptance) -> None:
        """Refuse, before anything is sent, an acceptance the factory would refuse."""
        signer = self.acceptance_signer(terms, acceptance)
        if signer.lower() != terms.farmer.lower():
            raise LoanTermsError(
                f"the terms were signed by {signer}, not by the farmer's wallet {terms.farmer}"
            )
        expected = self.acceptance_nonce(terms.farmer_id)
        if acceptance.nonce != expected:
            raise LoanTermsError(
                f"the acceptance carries nonce {acceptance.nonce} but the farmer's next is "
                f"{expected}: ask the farmer to sign again"
            )
        if acceptance.deadline < chain_now(self.client.w3):
            raise LoanTermsError("the farmer's acceptance expired: ask the farmer to sign again")

    def burn_acceptance_nonce(self, farmer_id: bytes, wallet: Sender) -> TxReceipt:
        """The farmer's wallet voids every signed, unrelayed acceptance."""
        return self._transact(wallet, self.factory.functions.burnAcceptanceNonce(farmer_id))

    def acceptance_of(self, escrow: str) -> tuple[bytes, bytes, int]:
        """(digest the farmer signed, disclosure hash, APR bps) stored in the escrow."""
        return self.acceptances_of([escrow])[0]

    def acceptances_of(self, escrows: Sequence[str]) -> list[tuple[bytes, bytes, int]]:
        """acceptance_of each escrow, read in JSON-RPC batches."""
        fn = view(self._escrow_abi, "acceptance")
        found = read_many(self.client.w3, [(to_checksum_address(e), fn, ()) for e in escrows])
        return [(bytes(digest), bytes(disclosure), int(apr)) for digest, disclosure, apr in found]

    def active_loan_of(self, farmer_id: bytes) -> str | None:
        """The farmer's open loan escrow, or None."""
        return self.active_loans_of([farmer_id])[0]

    def active_loans_of(self, farmer_ids: Sequence[bytes]) -> list[str | None]:
        """Each farmer's open loan escrow, or None, read in JSON-RPC batches."""
        fn = view(self.factory.abi, "activeLoanOf")
        found = read_many(self.client.w3, [(self.factory.address, fn, (f,)) for f in farmer_ids])
        return [None if int(address, 16) == 0 else str(address) for (address,) in found]

    # -------------------------------------------------------------- the payment token

    def balance_of(self, holder: str) -> int:
        """The holder's payment-token balance (fen)."""
        return int(_read(self.client, self.token, "balanceOf", to_checksum_address(holder)))

    def allowance(self, owner: str, spender: str) -> int:
        """What `spender` may pull from `owner` (fen)."""
        fn = self.token.functions.allowance(
            to_checksum_address(owner), to_checksum_address(spender)
        )
        return int(fn.call())

    def approve_call(self, spender: str, amount_fen: int) -> ContractFunction:
        """The token's approve call: let `spender` pull up to `amount_fen` from the sender."""
        return self.token.functions.approve(to_checksum_address(spender), amount_fen)

    def mint_call(self, to: str, amount_fen: int) -> ContractFunction:
        """The token's mint call (development eCNY: the token admin sends it)."""
        return self.token.functions.mint(to_checksum_address(to), amount_fen)

    # -------------------------------------------------------------- issuing

    def approve_factory(self, lender: Sender, amount_fen: int) -> TxReceipt:
        """Let the factory pull up to `amount_fen` from the lender when issuing funded loans."""
        with translate_reverts():
            return lender.wait([self.send_approval(lender, amount_fen)])[0]

    def send_approval(self, lender: Sender, amount_fen: int) -> PendingTx:
        """Send the factory's approval without waiting (checked by eth_call first), so the
        issues behind it in the lender's nonce order can go in the same block."""
        with translate_reverts():
            call = self.approve_call(self.factory.address, amount_fen)
            return lender.send(call, gas=APPROVE_GAS, preflight=True)

    def issue_call(
        self, terms: EscrowTerms, acceptance: Acceptance, *, fund: bool = True
    ) -> ContractFunction:
        """The factory's issueAndFundLoan (or, unfunded, issueLoan) call for accepted `terms`."""
        fn = self.factory.functions
        return (fn.issueAndFundLoan if fund else fn.issueLoan)(
            terms.params(), acceptance.as_tuple()
        )

    def check_issue(
        self, terms: EscrowTerms, acceptance: Acceptance, lender: str, *, fund: bool = False
    ) -> None:
        """eth_call the issue from `lender`: the named error if the chain would refuse it.
        Unfunded by default, so it checks everything but the lender's allowance."""
        with translate_reverts():
            self.client.check_call(self.issue_call(terms, acceptance, fund=fund), lender)

    def send_issue(
        self,
        terms: EscrowTerms,
        lender: Sender,
        acceptance: Acceptance,
        *,
        fund: bool = True,
        checked: bool = True,
    ) -> PendingTx:
        """Send the issuing transaction without waiting, with its measured gas limit: checked
        by eth_call first (the named error on a revert), or, `checked=False`, behind other
        transactions of a pipeline that it needs mined first (the lender's approval)."""
        self._check_lender(terms, lender)
        call = self.issue_call(terms, acceptance, fund=fund)
        with translate_reverts():
            return lender.send(call, gas=issue_gas(len(terms.budgets_fen)), preflight=checked)

    def issue(
        self, terms: EscrowTerms, lender: Sender, acceptance: Acceptance, *, fund: bool = True
    ) -> IssuedLoan:
        """Issue (and by default fund) an accepted loan; returns its id and escrow."""
        return self.issued_by(lender, self.send_issue(terms, lender, acceptance, fund=fund), fund)

    def issued_by(self, lender: Sender, pending: PendingTx, funded: bool = True) -> IssuedLoan:
        """Wait for an issuing transaction: the loan, or its named error if it failed."""
        with translate_reverts():
            receipt = lender.wait([pending])[0]
        return self._issued(receipt, funded)

    def _issued(self, receipt: TxReceipt, funded: bool) -> IssuedLoan:
        """IssuedLoan from the issuing receipt."""
        loan_id, escrow = _loan_issued(self.factory, receipt)
        return IssuedLoan(
            loan_id=loan_id,
            escrow=escrow,
            funded=funded,
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            block_number=receipt["blockNumber"],
            gas_used=receipt["gasUsed"],
        )

    @staticmethod
    def _check_lender(terms: EscrowTerms, lender: Sender) -> None:
        """The terms name the sending lender (the factory makes the caller the lender)."""
        if terms.lender.lower() != lender.address.lower():
            raise LoanTermsError(f"terms name lender {terms.lender} but {lender.address} sends")

    def fund(self, escrow: str, lender: Sender) -> TxReceipt:
        """Fund an issued loan: approve the escrow for the principal, then pull it."""
        contract = self.escrow(escrow)
        principal = self.state(escrow).principal_fen
        with translate_reverts():
            lender.transact(self.approve_call(contract.address, principal))
            return lender.transact(contract.functions.fund())

    def cancel_loan(self, escrow: str, by: Sender) -> TxReceipt:
        """Withdraw an unfunded loan (the lender; anyone past the draw deadline)."""
        return self._transact(by, self.escrow(escrow).functions.cancelLoan())

    # -------------------------------------------------------------- disbursement

    def invoice_used(self, escrow: str, invoice_hash: bytes) -> bool:
        """True if the escrow already took an order for this invoice (its idempotency key)."""
        return bool(self._escrow_read(escrow, "invoiceUsed", invoice_hash))

    def budget(self, escrow: str, category: str | bytes) -> tuple[int, int]:
        """A category's budget and what orders committed of it (fen; 0, 0 if none)."""
        found = self._escrow_read(escrow, "budgetOf", category_id(category))
        budget, committed = found  # the Budget struct
        return int(budget), int(committed)

    def order_call(
        self,
        escrow: str,
        merchant: str,
        category: str | bytes,
        amount_fen: int,
        invoice_hash: bytes,
    ) -> ContractFunction:
        """The escrow's orderPayment call: pay `amount_fen` of a category's budget to a merchant."""
        return self.escrow(escrow).functions.orderPayment(
            to_checksum_address(merchant), category_id(category), amount_fen, invoice_hash
        )

    def send_order(
        self,
        escrow: str,
        merchant: str,
        category: str | bytes,
        amount_fen: int,
        invoice_hash: bytes,
        by: Sender,
        *,
        gas: int | None = None,
    ) -> PendingTx:
        """Send a payment order without waiting: checked by eth_call first, or, when the escrow
        is not mined yet, sent unchecked with the `gas` given."""
        fn = self.order_call(escrow, merchant, category, amount_fen, invoice_hash)
        with translate_reverts():
            return by.send(fn, gas=gas or ORDER_GAS, preflight=gas is None)

    def send_orders(self, calls: Sequence[ContractFunction], by: Sender) -> list[PendingTx]:
        """Send checked orders back to back with their measured gas, receipts awaited later."""
        with translate_reverts():
            return by.send_many(calls, gas=ORDER_GAS)

    def order_outcomes(
        self, escrows: Sequence[str], pending: Sequence[PendingTx], by: Sender
    ) -> list[OrderResult | Exception]:
        """Each sent order's result, or in its place the error it failed with on chain (the
        contract's named error where it gave one)."""
        outcomes: list[OrderResult | Exception] = []
        for escrow, settled in zip(escrows, by.settle(pending), strict=True):
            if isinstance(settled, ContractRevertError):
                outcomes.append(from_revert(settled))
            elif isinstance(settled, Exception):
                outcomes.append(settled)
            else:
                try:
                    outcomes.append(self._order_result(escrow, settled))
                except OrderNotExecutedError as exc:
                    outcomes.append(exc)
        return outcomes

    def order_payment(
        self,
        escrow: str,
        merchant: str,
        category: str | bytes,
        amount_fen: int,
        invoice_hash: bytes,
        by: Sender,
    ) -> OrderResult:
        """Order a payment to an approved merchant: paid now (Immediate) or reserved."""
        pending = self.send_order(escrow, merchant, category, amount_fen, invoice_hash, by)
        with translate_reverts():
            receipt = by.wait([pending])[0]
        return self._order_result(escrow, receipt)

    def _order_result(self, escrow: str, receipt: TxReceipt) -> OrderResult:
        """OrderResult from an order receipt, as web3 or a JSON-RPC batch gives it;
        OrderNotExecutedError if the escrow did nothing."""
        contract = self.escrow(escrow)
        if self._escrow_events is None:
            self._escrow_events = event_decoder(contract.abi)
        events = [e for e in self._escrow_events.decode_receipt(receipt)
                  if e.address == contract.address]  # fmt: skip
        paid = [e for e in events if e.name == "LoanDisbursed"]
        reserved = [e for e in events if e.name == "PaymentOrdered"]
        if not paid and not reserved:
            raise OrderNotExecutedError(
                f"order tx {receipt['transactionHash'].to_0x_hex()} ran before escrow {escrow} "
                "existed and did nothing: send it again"
            )
        args = (paid or reserved)[0].args
        return OrderResult(
            order_id=int(args["orderId"]),
            escrow=str(contract.address),
            merchant=str(args["merchant"]),
            amount_fen=int(args["amount"]),
            paid=bool(paid),
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            gas_used=receipt["gasUsed"],
        )

    def confirm_payment(self, escrow: str, order_id: int, by: Sender) -> TxReceipt:
        """Release a reserved order (merchant: delivery; farmer or agent: receipt)."""
        return self._transact(by, self.escrow(escrow).functions.confirmPayment(order_id))

    def accept_order(self, escrow: str, order_id: int, merchant: Sender) -> TxReceipt:
        """The merchant takes a reserved order before delivering (MerchantConfirms mode)."""
        return self._transact(merchant, self.escrow(escrow).functions.acceptOrder(order_id))

    def cancel_payment(self, escrow: str, order_id: int, by: Sender) -> TxReceipt:
        """Cancel a reserved order."""
        return self._transact(by, self.escrow(escrow).functions.cancelPayment(order_id))

    def return_unspent_call(self, escrow: str) -> ContractFunction:
        """The escrow's returnUnspent call."""
        return self.escrow(escrow).functions.returnUnspent()

    def return_unspent(self, escrow: str, by: Sender) -> int:
        """Send unspent, unreserved funds back to the lender (after the draw window)."""
        receipt = self._transact(by, self.return_unspent_call(escrow), RETURN_UNSPENT_GAS)
        events = events_of(self.escrow(escrow), "LoanUnspentReturned", receipt)
        return int(events[0]["args"]["amount"])

    def disburse_first_payment(
        self,
        terms: EscrowTerms,
        acceptance: Acceptance,
        lender: Sender,
        orderer: Sender,
        merchant: str,
        category: str | bytes,
        amount_fen: int,
        invoice_hash: bytes,
    ) -> FirstPayment:
        """Issue and fund `terms`, then pay the first merchant, pipelined: the order goes out
        before the issuing transaction is mined, to the CREATE2-predicted escrow. If a node
        mined the order first (it then did nothing), it is sent again after the issue."""
        escrow = self.predict_escrow(terms)
        issuing = self.send_issue(terms, lender, acceptance, fund=True)
        ordering = self.send_order(
            escrow, merchant, category, amount_fen, invoice_hash, orderer, gas=ORDER_GAS
        )
        with translate_reverts():
            loan = self._issued(lender.wait([issuing])[0], True)
            receipt = orderer.wait([ordering])[0]
        try:
            return FirstPayment(loan, self._order_result(escrow, receipt), pipelined=True)
        except OrderNotExecutedError:
            again = self.order_payment(
                escrow, merchant, category, amount_fen, invoice_hash, orderer
            )
            return FirstPayment(loan, again, pipelined=False)

    # -------------------------------------------------------------- repayment and status

    def repay_call(self, escrow: str, amount_fen: int) -> ContractFunction:
        """The escrow's repay call (the payer first approves the escrow for the amount)."""
        return self.escrow(escrow).functions.repay(amount_fen)

    def repay(self, escrow: str, payer: Sender, amount_fen: int | None = None) -> int:
        """Repay `amount_fen` (default: everything outstanding) from `payer`; returns fen paid."""
        contract = self.escrow(escrow)
        amount = amount_fen if amount_fen is not None else contract.functions.outstanding().call()
        with translate_reverts():
            payer.transact(self.approve_call(contract.address, amount), gas=APPROVE_GAS)
            payer.transact(self.repay_call(escrow, amount), gas=REPAY_GAS, preflight=True)
        return int(amount)

    def refresh_status_call(self, escrow: str) -> ContractFunction:
        """The escrow's refreshStatus call (time-driven status changes)."""
        return self.escrow(escrow).functions.refreshStatus()

    def refresh_status(self, escrow: str, by: Sender) -> LoanStatus:
        """Apply time-driven status changes; returns the status after."""
        self._transact(by, self.refresh_status_call(escrow))
        return LoanStatus(self.escrow(escrow).functions.status().call())

    def declare_default_call(self, escrow: str) -> ContractFunction:
        """The escrow's declareDefault call."""
        return self.escrow(escrow).functions.declareDefault()

    def declare_default(self, escrow: str, lender: Sender) -> TxReceipt:
        """Declare default (lender, after due date + grace + default days)."""
        return self._transact(lender, self.declare_default_call(escrow))

    def went_overdue(self, escrows: Sequence[str], from_block: int = 0) -> set[str]:
        """Those of `escrows` whose status ever changed to Overdue (LoanStatusChanged events)."""
        if not escrows:
            return set()
        reader = self.client.event_reader(escrows, self._escrow_abi, from_block)
        changes = reader.events("LoanStatusChanged", "current", [int(LoanStatus.OVERDUE)])
        return {e.address for e in changes}

    def write_off_call(self, escrow: str) -> ContractFunction:
        """The escrow's writeOff call."""
        return self.escrow(escrow).functions.writeOff()

    def write_off(self, escrow: str, lender: Sender) -> TxReceipt:
        """Write a defaulted loan off (lender)."""
        return self._transact(lender, self.write_off_call(escrow))

    def send_servicing(
        self, calls: Sequence[ContractFunction], by: Sender, gas: int
    ) -> list[TxReceipt | Exception]:
        """Send checked servicing calls back to back with their measured `gas` bound
        (RETURN_UNSPENT_GAS, STATUS_GAS); each one's receipt or, in its place, the named error
        it failed with on chain."""
        with translate_reverts():
            pending = by.send_many(calls, gas=gas)
        return [
            from_revert(settled) if isinstance(settled, ContractRevertError) else settled
            for settled in by.settle(pending)
        ]

    def order_count(self, escrow: str) -> int:
        """How many payment orders the escrow has taken (ids run from 1)."""
        return int(self.escrow(escrow).functions.orderCount().call())

    def order(self, escrow: str, order_id: int) -> PaymentOrder:
        """Payment order `order_id` of the escrow (status UNKNOWN for an id never used)."""
        merchant, amount, status, category, invoice = (
            self.escrow(escrow).functions.order(order_id).call()
        )
        return PaymentOrder(
            order_id, str(merchant), int(amount), OrderStatus(status), bytes(category),
            bytes(invoice),
        )  # fmt: skip

    def state(self, escrow: str) -> LoanState:
        """Terms, status and accounting of one escrow."""
        return self.states([escrow])[0]

    def states(self, escrows: Sequence[str]) -> list[LoanState]:
        """Terms, status and accounting of many escrows, read in JSON-RPC batches (a portfolio
        of thousands in seconds: chain.views)."""
        reads = [view(self._escrow_abi, name) for name in ("terms", "accounting", "status")]
        out = read_many(self.client.w3, [(e, v, ()) for e in escrows for v in reads])
        return [
            _loan_state(to_checksum_address(e), *(r[0] for r in out[3 * i : 3 * i + 3]))
            for i, e in enumerate(escrows)
        ]

    def _transact(self, by: Sender, fn: Any, gas: int | None = None) -> TxReceipt:
        """Send (with a measured `gas` bound, checked by eth_call first; else estimated), wait,
        translate reverts."""
        with translate_reverts():
            return by.transact(fn, gas=gas, preflight=gas is not None)
