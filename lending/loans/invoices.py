"""An invoice's key on chain: the escrow takes one order per invoice hash (`invoiceUsed`).

The hash names the merchant and the merchant's invoice number, not the amount: the same invoice
sent twice (a clerk's retry, a CSV uploaded again) is one order, whatever the amount says.
A merchant recomputes it from its own invoice number to match a payment to its books.
"""

from __future__ import annotations

from eth_utils import to_checksum_address

from lending.loans.disbursement import document_hash

INVOICE_KEY_VERSION = "tealedger.invoice.v1"


def invoice_hash(merchant: str, number: str) -> bytes:
    """The 32-byte key of merchant `merchant`'s invoice `number` (trimmed)."""
    return document_hash(
        {
            "v": INVOICE_KEY_VERSION,
            "merchant": to_checksum_address(merchant),
            "invoice": number.strip(),
        }
    )
