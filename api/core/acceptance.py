"""A farmer's EIP-712 acceptance of a loan offer: the typed data to sign and the checked record.

Whoever submits the signature (the farmer's own login, or the cooperative's clerk relaying what
the member's wallet app signed on the cooperative's phone) adds no authority: the signature is
the farmer's consent, checked against the offer's terms and the farmer's TeaTrace wallet before
it is kept, and checked again by LoanFactory when the lender issues.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydField
from sqlalchemy import Engine

from api.core.chain import loan_desk
from api.core.errors import Conflict, Invalid
from chain.client import ChainClient
from lending.loans.disbursement import Acceptance
from lending.loans.errors import LoanTermsError
from lending.loans.offers import OfferStateError, OfferStore, StoredOffer


class AcceptanceIn(BaseModel):
    """The farmer's signature of the typed data, with the nonce and deadline it carries."""

    nonce: int = PydField(ge=0, le=2**63 - 1)
    deadline: int = PydField(ge=0, le=2**63 - 1)
    signature: str = PydField(pattern=r"^0x[0-9a-fA-F]{130}$")


def typed_data(chain: ChainClient, offer: StoredOffer) -> dict[str, Any]:
    """The offer's acceptance as typed data (the farmer's current nonce; a chain-time deadline)."""
    desk = loan_desk(chain)
    nonce = desk.acceptance_nonce(offer.terms.farmer_id)
    return desk.acceptance_typed_data(offer.terms, nonce, desk.acceptance_deadline())


def record_acceptance(
    engine: Engine, chain: ChainClient, offer: StoredOffer, body: AcceptanceIn
) -> StoredOffer:
    """Check the signature against the offer's terms (422 if it does not accept them) and keep it
    for the lender to relay (409 once the offer is a loan)."""
    if offer.escrow is not None:
        raise Conflict(f"this offer is already loan {offer.escrow}")
    acceptance = Acceptance(body.nonce, body.deadline, bytes.fromhex(body.signature[2:]))
    try:
        loan_desk(chain).check_acceptance(offer.terms, acceptance)
    except LoanTermsError as exc:
        raise Invalid(f"the signature does not accept this offer: {exc}") from exc
    try:
        return OfferStore(engine).record_acceptance(offer.offer_id, acceptance)
    except OfferStateError as exc:
        raise Conflict(str(exc)) from exc
