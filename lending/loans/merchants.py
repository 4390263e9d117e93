"""Approved merchants: registry administration and each merchant's view of payments received.

Payments are read from the LoanDisbursed events of the factory's own escrows only (the escrow
list comes from the factory's LoanIssued events), so a look-alike contract emitting the same
event cannot plant fake payments in a merchant's view.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from chain.client import ChainClient
from chain.sender import Sender
from lending.loans.contracts import LOAN_ESCROW, LOAN_FACTORY, MERCHANT_REGISTRY
from lending.loans.disbursement import category_id
from lending.loans.errors import translate_reverts

ADDRESS_CHUNK = 200  # escrow addresses per eth_getLogs filter


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

    def approve(
        self, merchant: str, category: str | bytes, expires_at: int, by: Sender
    ) -> TxReceipt:
        """Approve (or renew) a merchant for a category until `expires_at`."""
        fn = self.registry.functions.approveMerchant(
            to_checksum_address(merchant), category_id(category), expires_at
        )
        with translate_reverts():
            return by.transact(fn)

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
        logs = self.registry.events.CategoryRegistered().get_logs(from_block=self.from_block)
        return {bytes(e["args"]["category"]): str(e["args"]["name"]) for e in logs}


def escrows_of(client: ChainClient, factory: str = LOAN_FACTORY, from_block: int = 0) -> list[str]:
    """Every escrow the factory issued, in loan order."""
    contract = _contract(client, LOAN_FACTORY, factory)
    logs = contract.events.LoanIssued().get_logs(from_block=from_block)
    return [str(e["args"]["escrow"]) for e in sorted(logs, key=lambda e: e["args"]["loanId"])]


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
    decoder = client.contract(LOAN_ESCROW, escrows[0]).events.LoanDisbursed()
    topic0 = event_abi_to_log_topic(decoder.abi)
    merchant_topic = b"\x00" * 12 + bytes.fromhex(to_checksum_address(merchant)[2:])
    payments: list[MerchantPayment] = []
    for chunk in _chunks(escrows, ADDRESS_CHUNK):
        logs = client.w3.eth.get_logs(
            {
                "address": list(chunk),
                "fromBlock": from_block,
                "toBlock": "latest",
                "topics": [topic0, None, merchant_topic],  # type: ignore[list-item]
            }
        )
        payments.extend(_payment(decoder.process_log(log), category_names) for log in logs)
    return sorted(payments, key=lambda p: (p.block_number, p.log_index))


def _payment(event: Any, names: Mapping[bytes, str] | None) -> MerchantPayment:
    """A decoded LoanDisbursed event as a MerchantPayment."""
    args = event["args"]
    category = bytes(args["category"])
    return MerchantPayment(
        loan_id=int(args["loanId"]),
        escrow=str(event["address"]),
        merchant=str(args["merchant"]),
        category=category,
        category_name=(names or {}).get(category),
        amount_fen=int(args["amount"]),
        invoice_hash=bytes(args["invoiceHash"]),
        order_id=int(args["orderId"]),
        block_number=int(event["blockNumber"]),
        tx_hash=event["transactionHash"].to_0x_hex(),
        log_index=int(event["logIndex"]),
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
