"""Approved merchants: registry administration and each merchant's view of payments received.

Payments are read from the LoanDisbursed events of the factory's own escrows only (the escrow
list comes from the factory's LoanIssued events), so a look-alike contract emitting the same
event cannot plant fake payments in a merchant's view.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from chain.client import ChainClient
from chain.events import Event, EventReader
from chain.sender import Sender
from lending.loans.contracts import LOAN_ESCROW, LOAN_FACTORY, MERCHANT_REGISTRY
from lending.loans.disbursement import category_id
from lending.loans.errors import translate_reverts


@dataclass(frozen=True)
class Approval:
    """A merchant's approval record for one category (unix times)."""

    approved_at: int
    expires_at: int
    revoked: bool


@dataclass(frozen=True)
class MerchantPayment:
    """One loan payment a merchant received."""

    loan_id: int
    escrow: str
    merchant: str
    category: bytes
    category_name: str | None
    amount_fen: int
    invoice_hash: bytes
    order_id: int
    block_number: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class PaymentSummary:
    """A merchant's payments from one loan in one category."""

    loan_id: int
    escrow: str
    category: bytes
    category_name: str | None
    total_fen: int
    invoice_hashes: tuple[bytes, ...]


def _contract(client: ChainClient, kind: str, where: str) -> Contract:
    """A contract by address or registry name."""
    return client.contract(kind, where) if Web3.is_address(where) else client.contract(where)


class MerchantDesk:
    """A registrar's handle on the MerchantRegistry."""

    def __init__(
        self, client: ChainClient, registry: str = MERCHANT_REGISTRY, from_block: int = 0
    ) -> None:
        self.client = client
        self.from_block = from_block  # where event queries start (the deployment block)
        self.registry = _contract(client, MERCHANT_REGISTRY, registry)

    def register_category(self, name: str, by: Sender) -> bytes:
        """Register a spending category; returns its id (keccak256 of the name)."""
        with translate_reverts():
            by.transact(self.registry.functions.registerCategory(name))
        return category_id(name)

    def approve_call(
        self, merchant: str, category: str | bytes, expires_at: int
    ) -> ContractFunction:
        """The registry's approveMerchant call, for sending alone or pipelined."""
        return self.registry.functions.approveMerchant(
            to_checksum_address(merchant), category_id(category), expires_at
        )

    def approve(
        self, merchant: str, category: str | bytes, expires_at: int, by: Sender
    ) -> TxReceipt:
        """Approve (or renew) a merchant for a category until `expires_at`."""
        with translate_reverts():
            return by.transact(self.approve_call(merchant, category, expires_at))

    def revoke(
        self, merchant: str, category: str | bytes, by: Sender, reason_hash: bytes = bytes(32)
    ) -> TxReceipt:
        """Revoke a merchant's live approval for a category."""
        fn = self.registry.functions.revokeMerchant(
            to_checksum_address(merchant), category_id(category), reason_hash
        )
        with translate_reverts():
            return by.transact(fn)

    def is_approved(self, merchant: str, category: str | bytes) -> bool:
        """Approved for the category at the latest block."""
        who, what = to_checksum_address(merchant), category_id(category)
        return bool(self.registry.functions.isApproved(who, what).call())

    def approval(self, merchant: str, category: str | bytes) -> Approval:
        """The stored approval record."""
        fn = self.registry.functions.approval(to_checksum_address(merchant), category_id(category))
        approved_at, expires_at, revoked = fn.call()
        return Approval(approved_at, expires_at, revoked)

    def category_names(self) -> dict[bytes, str]:
        """Registered category ids and their names (from CategoryRegistered events)."""
        reader = _reader(self.client, self.registry, self.from_block)
        return {e.args["category"]: e.args["name"] for e in reader.events("CategoryRegistered")}


def _reader(client: ChainClient, contract: Contract, from_block: int) -> EventReader:
    """Events of one contract from `from_block`."""
    return client.event_reader(contract.address, contract.abi, from_block)


def escrows_of(client: ChainClient, factory: str = LOAN_FACTORY, from_block: int = 0) -> list[str]:
    """Every escrow the factory issued, in loan order."""
    reader = _reader(client, _contract(client, LOAN_FACTORY, factory), from_block)
    issued = sorted(reader.events("LoanIssued"), key=lambda e: e.args["loanId"])
    return [e.args["escrow"] for e in issued]


def payments_received(
    client: ChainClient,
    merchant: str,
    *,
    factory: str = LOAN_FACTORY,
    from_block: int = 0,
    category_names: Mapping[bytes, str] | None = None,
) -> list[MerchantPayment]:
    """Every loan payment `merchant` received from the factory's escrows, oldest first."""
    escrows = escrows_of(client, factory, from_block)
    if not escrows:
        return []
    abi = client.contract(LOAN_ESCROW, escrows[0]).abi
    reader = client.event_reader(escrows, abi, from_block)
    paid = reader.events("LoanDisbursed", "merchant", [to_checksum_address(merchant)])
    return [_payment(e, category_names) for e in paid]


def _payment(event: Event, names: Mapping[bytes, str] | None) -> MerchantPayment:
    """A decoded LoanDisbursed event as a MerchantPayment."""
    args = event.args
    return MerchantPayment(
        loan_id=args["loanId"],
        escrow=event.address,
        merchant=args["merchant"],
        category=args["category"],
        category_name=(names or {}).get(args["category"]),
        amount_fen=args["amount"],
        invoice_hash=args["invoiceHash"],
        order_id=args["orderId"],
        block_number=event.block_number,
        tx_hash="0x" + event.tx_hash.hex(),
        log_index=event.log_index,
    )


def summarize(payments: Iterable[MerchantPayment]) -> list[PaymentSummary]:
    """Payments grouped by loan and category, with their invoice hashes, in loan order."""
    groups: dict[tuple[int, bytes], list[MerchantPayment]] = defaultdict(list)
    for p in payments:
        groups[(p.loan_id, p.category)].append(p)
    return [
        PaymentSummary(
            loan_id=loan_id,
            escrow=group[0].escrow,
            category=category,
            category_name=group[0].category_name,
            total_fen=sum(p.amount_fen for p in group),
            invoice_hashes=tuple(p.invoice_hash for p in group),
        )
        for (loan_id, category), group in sorted(groups.items())
    ]
