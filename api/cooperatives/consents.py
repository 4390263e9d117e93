"""A member who keeps their own wallet consents to a lender at the cooperative's desk.

The clerk asks for the consent's typed data (the member's TeaTrace wallet, its nonce and epoch,
an expiry and a relay deadline in chain time), the member signs it in their wallet app, and the
cooperative relays the signature (`grantConsentBySig`), paying the gas. The signature alone is
the farmer's consent: ConsentRegistry checks it against the member's wallet, and an eth_call
checks it before anything is sent (the contract's reason as 409 otherwise).

A desk collects many members' signatures in a day: `relay_consents` relays up to
MAX_CONSENT_BATCH of them in one request, each checked as the single relay checks it (a refused
one is listed with its reason and nothing is sent for it), then the rest sent back to back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlmodel import Session
from web3.contract.contract import ContractFunction

from api.cooperatives.members import own_farmer
from api.core.chain import check_call, org_sender
from api.core.consent import ConsentChanged, ConsentIn
from api.core.consent_gate import revocation_cleared
from api.core.errors import ROOTS, Conflict, Invalid, detail_of, refusal
from api.core.ids import parse_id, tx_hex
from api.core.models import Organisation, Role
from api.core.organisations import find_organisation
from api.core.settings import ApiSettings
from api.core.types import Id32, Int, RowId
from chain.client import ChainClient
from chain.clock import chain_now
from chain.errors import ContractRevertError
from lending.loans.errors import translate_reverts, translated
from traceability.consent import SIGNATURE_TTL, ConsentService
from traceability.contracts import farmer_record

DAY = 86_400
MAX_CONSENT_BATCH = 200
"""Signed consents one request relays: its relays fit in a few blocks."""


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
    member = MemberConsent(farmer_id=parse_id(farmer, "farmer"), **body.model_dump())
    farmer_id, lender, fn = _checked(session, ConsentService(chain), coop, member)
    check_call(chain, fn, coop.chain_address)
    with translate_reverts():
        receipt = org_sender(chain, settings, coop).transact(fn)
    return _granted(session, _Relay(0, farmer_id, lender, body.expires_at, fn), receipt)


class MemberConsent(SignedConsent):
    """One member's signed consent in a batch."""

    farmer_id: Id32


class ConsentBatch(BaseModel):
    """Members' signed consents to relay at once."""

    model_config = ConfigDict(extra="forbid")

    consents: list[MemberConsent] = PydField(min_length=1, max_length=MAX_CONSENT_BATCH)


class ConsentRefused(BaseModel):
    """A consent the batch did not relay, and why (nothing was sent for it unless it says so)."""

    item: int
    farmer_id: str
    reason: str


class ConsentBatchOut(BaseModel):
    """What a batch relayed (in the batch's order) and what it refused."""

    granted: list[ConsentChanged]
    refused: list[ConsentRefused]


@dataclass(frozen=True)
class _Relay:
    """A signed consent that passed every check, waiting to be sent with the batch's others."""

    item: int
    farmer_id: str
    lender: Organisation
    expires_at: int
    call: ContractFunction


def _checked(
    session: Session, consent: ConsentService, coop: Organisation, body: MemberConsent
) -> tuple[str, Organisation, ContractFunction]:
    """The member's id, the lender and the relay call of one signed consent, checked as the
    single relay checks it (all but the eth_call, which the caller makes)."""
    row = own_farmer(session, consent.client, coop, "0x" + body.farmer_id.hex())
    lender = find_organisation(session, body.lender_org_id, {Role.LENDER}, "lender")
    signature = bytes.fromhex(body.signature[2:])
    fn = consent.relay_grant_call(
        body.farmer_id, lender.chain_address, body.expires_at, body.deadline, signature
    )
    return row.farmer_id, lender, fn


class _BatchChecks:
    """A batch's consents checked against the chain (the relays' eth_calls in one batch) and
    each against the batch's earlier ones: a wallet's signatures that pass the eth_call all
    carry its current nonce, so only the first of them can be relayed."""

    def __init__(self, session: Session, chain: ChainClient, coop: Organisation) -> None:
        self.session, self.chain, self.coop = session, chain, coop
        self.consent = ConsentService(chain)
        self.wallets: dict[str, int] = {}

    def check_all(self, consents: list[MemberConsent]) -> list[_Relay | ConsentRefused]:
        """Each consent ready to relay, or refused with the reason, in the batch's order."""
        firsts = [self._first(item, consent) for item, consent in enumerate(consents)]
        relays = [f for f in firsts if isinstance(f, tuple)]
        calls = [relay.call for relay, _ in relays]
        errors = iter(self.chain.check_calls(calls, self.coop.chain_address))
        return [
            f if isinstance(f, ConsentRefused) else self._then(*f, next(errors)) for f in firsts
        ]

    def _first(self, item: int, consent: MemberConsent) -> tuple[_Relay, str] | ConsentRefused:
        """The relay and the member's wallet, or why not: every check before the eth_call."""
        try:
            farmer_id, lender, fn = _checked(self.session, self.consent, self.coop, consent)
            wallet = _wallet(self.chain, consent.farmer_id).lower()
        except ROOTS as exc:
            return _refused(item, consent.farmer_id, exc)
        return _Relay(item, farmer_id, lender, consent.expires_at, fn), wallet

    def _then(
        self, relay: _Relay, wallet: str, error: ContractRevertError | None
    ) -> _Relay | ConsentRefused:
        """The relay after its eth_call and the batch's earlier ones, or why not."""
        try:
            if error is not None:
                raise translated(error)
            if wallet in self.wallets:
                raise Invalid(
                    f"item {self.wallets[wallet]} of this batch was signed by the same wallet "
                    "with the same nonce: relay this one after it, from a new request"
                )
        except ROOTS as exc:
            return _refused(relay.item, bytes.fromhex(relay.farmer_id[2:]), exc)
        self.wallets[wallet] = relay.item
        return relay


def _refused(item: int, farmer_id: bytes, exc: Exception) -> ConsentRefused:
    """A consent of the batch refused, with the reason."""
    return ConsentRefused(item=item, farmer_id="0x" + farmer_id.hex(), reason=refusal(exc))


def _granted(session: Session, relay: _Relay, receipt: object) -> ConsentChanged:
    """A relayed consent. Granted again, a revocation recorded through the service no longer
    stands."""
    revocation_cleared(session.get_bind(), relay.farmer_id, relay.lender.chain_address)
    assert relay.lender.id is not None
    return ConsentChanged(
        farmer_id=relay.farmer_id,
        lender_org_id=relay.lender.id,
        lender_address=relay.lender.chain_address,
        expires_at=relay.expires_at,
        transaction=tx_hex(receipt),
    )


def relay_consents(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    body: ConsentBatch,
) -> ConsentBatchOut:
    """Relay many members' wallet-signed consents: each checked first (a refused one sends
    nothing), then the rest sent back to back; one that fails on chain is listed with its reason."""
    checks = _BatchChecks(session, chain, coop)
    outcomes = checks.check_all(body.consents)
    ready = [o for o in outcomes if isinstance(o, _Relay)]
    refused = [o for o in outcomes if isinstance(o, ConsentRefused)]
    granted: list[ConsentChanged] = []
    if not ready:
        return ConsentBatchOut(granted=granted, refused=refused)
    sender = org_sender(chain, settings, coop)
    relayed = checks.consent.relay_grants(sender, [r.call for r in ready])
    for relay, outcome in zip(ready, relayed, strict=True):
        if isinstance(outcome, Exception):
            reason = f"failed on chain: {detail_of(outcome)}"
            refused.append(
                ConsentRefused(item=relay.item, farmer_id=relay.farmer_id, reason=reason)
            )
        else:
            granted.append(_granted(session, relay, outcome))
    refused.sort(key=lambda r: r.item)
    return ConsentBatchOut(granted=granted, refused=refused)
