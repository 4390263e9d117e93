"""A member who keeps their own wallet consents to a lender at the cooperative's desk.

The clerk asks for the consent's typed data (the member's TeaTrace wallet, its nonce and epoch,
an expiry and a relay deadline in chain time), the member signs it in their wallet app, and the
cooperative relays the signature (`grantConsentBySig`), paying the gas. The signature alone is
the farmer's consent: ConsentRegistry checks it against the member's wallet, and an eth_call
checks it before anything is sent (the contract's reason as 409 otherwise).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydField
from sqlmodel import Session

from api.cooperatives.members import own_farmer
from api.core.chain import check_call, org_sender
from api.core.consent import ConsentChanged, ConsentIn
from api.core.consent_gate import revocation_cleared
from api.core.errors import Conflict
from api.core.ids import tx_hex
from api.core.models import Organisation, Role
from api.core.organisations import find_organisation
from api.core.settings import ApiSettings
from api.core.types import Int, RowId
from chain.client import ChainClient
from chain.clock import chain_now
from lending.loans.errors import translate_reverts
from traceability.consent import SIGNATURE_TTL, ConsentService
from traceability.contracts import farmer_record

DAY = 86_400


class ConsentRequest(BaseModel):
    """What the member's wallet app signs to let a lender read the member's profile."""

    farmer_id: str
    lender_org_id: int
    lender_name: str
    wallet: str
    expires_at: int
    deadline: int
    typed_data: dict[str, Any]


class SignedConsent(BaseModel):
    """The member's signature of a consent request, with the expiry and deadline it carries."""

    lender_org_id: RowId
    expires_at: Int = PydField(ge=0, le=2**63 - 1)
    deadline: Int = PydField(ge=0, le=2**63 - 1)
    signature: str = PydField(pattern=r"^0x[0-9a-fA-F]{130}$")


def _wallet(chain: ChainClient, fid: bytes) -> str:
    """The member's TeaTrace wallet; 409 without one."""
    wallet = farmer_record(chain, fid).wallet
    if wallet is None:
        raise Conflict("the member has no wallet on chain: register one first")
    return wallet


def consent_request(
    session: Session, chain: ChainClient, coop: Organisation, farmer: str, body: ConsentIn
) -> ConsentRequest:
    """The typed data of a consent for one of your members (expiry and deadline in chain time)."""
    row = own_farmer(session, chain, coop, farmer)
    lender = find_organisation(session, body.lender_org_id, {Role.LENDER}, "lender")
    fid = bytes.fromhex(row.farmer_id[2:])
    wallet = _wallet(chain, fid)
    now = chain_now(chain.w3)
    expires_at, deadline = now + body.days * DAY, now + SIGNATURE_TTL
    consent = ConsentService(chain)
    typed = consent.consent_typed_data(wallet, fid, lender.chain_address, expires_at, deadline)
    assert lender.id is not None
    return ConsentRequest(farmer_id=row.farmer_id, lender_org_id=lender.id,
                          lender_name=lender.name, wallet=wallet, expires_at=expires_at,
                          deadline=deadline, typed_data=typed)  # fmt: skip


def relay_consent(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    farmer: str,
    body: SignedConsent,
) -> ConsentChanged:
    """Relay a member's wallet-signed consent (checked by eth_call first; you pay the gas)."""
    row = own_farmer(session, chain, coop, farmer)
    lender = find_organisation(session, body.lender_org_id, {Role.LENDER}, "lender")
    fid = bytes.fromhex(row.farmer_id[2:])
    consent = ConsentService(chain)
    signature = bytes.fromhex(body.signature[2:])
    fn = consent.relay_grant_call(fid, lender.chain_address, body.expires_at, body.deadline,
                                  signature)  # fmt: skip
    check_call(chain, fn, coop.chain_address)
    with translate_reverts():
        receipt = org_sender(chain, settings, coop).transact(fn)
    # Granted again: a revocation recorded through the service no longer stands.
    revocation_cleared(session.get_bind(), row.farmer_id, lender.chain_address)
    assert lender.id is not None
    return ConsentChanged(farmer_id=row.farmer_id, lender_org_id=lender.id,
                          lender_address=lender.chain_address, expires_at=body.expires_at,
                          transaction=tx_hex(receipt))  # fmt: skip
