"""Organisations on chain: their keystore-held signer, their gas, their on-chain roles
(TeaTrace and the lending contracts) and, for merchants, their MerchantRegistry approvals.

Role grants are signed by the platform account (`chain.sender(0)`), which holds
DEFAULT_ADMIN_ROLE on every contract it deployed; merchant approvals by the registrar
(`registrar_sender`). Checks that can fail are made with reads
before anything is sent, so a refused request leaves nothing half-done on chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from eth_utils import keccak
from pydantic import BaseModel, Field, StringConstraints, field_validator
from web3 import Web3
from web3.contract import Contract

from api.core.chain import deployed_contract
from api.core.errors import Conflict, Invalid, NotFound, Unavailable
from api.core.models import Organisation, Role
from api.core.types import Int
from chain.client import ChainClient
from chain.roles import has_role
from chain.sender import Sender
from lending.loans.contracts import DEV_REGISTRAR, MERCHANT_REGISTRY, REGISTRAR_ROLE
from lending.loans.disbursement import category_id as lending_category_id
from traceability import contracts

# Development chains only: what a new organisation is given to pay for gas.
DEV_GAS_WEI = 10 * 10**18
DEV_GAS_FLOOR_WEI = 10**18

MAX_APPROVAL_CATEGORIES = 16
MAX_CATEGORY_NAME = 100
UINT64_MAX = 2**64 - 1
# revokeMerchant records a reason hash; the API takes no reason, so none is recorded.
NO_REASON = bytes(32)


@dataclass(frozen=True)
class ChainRole:
    """One AccessControl role on one contract of the deployment registry."""

    contract: str
    role: str

    @property
    def label(self) -> str:
        """`Contract.ROLE`, as the API names it."""
        return f"{self.contract}.{self.role}"

    @property
    def role_id(self) -> bytes:
        """The OpenZeppelin role id (keccak256 of the name)."""
        return keccak(text=self.role)


SHARE_COMMITTER = ChainRole("SaleSettlement", "SHARE_COMMITTER_ROLE")
# Every on-chain role each organisation role needs (deploy grants the same ones to the
# development accounts). Nobody gets REGISTRAR_ROLE here: merchants are approved by the
# service's registrar account (see registrar_sender), and no organisation role is a registrar.
CHAIN_ROLES: dict[Role, tuple[ChainRole, ...]] = {
    Role.COOPERATIVE: (ChainRole(contracts.TEA_TRACE, "COOPERATIVE_ROLE"), SHARE_COMMITTER),
    Role.PROCESSOR: (ChainRole(contracts.TEA_TRACE, "PROCESSOR_ROLE"), SHARE_COMMITTER),
    Role.DISTRIBUTOR: (
        ChainRole(contracts.TEA_TRACE, "DISTRIBUTOR_ROLE"),
        ChainRole("SaleSettlement", "DISTRIBUTOR_ROLE"),
    ),
    Role.INSPECTOR: (ChainRole(contracts.TEA_TRACE, "INSPECTOR_ROLE"),),
    Role.LENDER: (ChainRole("LoanFactory", "LENDER_ROLE"),),
}


class Provisioned(BaseModel):
    """What provisioning did (each step is skipped when already done)."""

    organisation_id: int
    chain_address: str
    funded_wei: int
    role_granted: str | None = Field(
        description="the organisation's role if its TeaTrace role was granted in this call"
    )
    roles_granted: list[str] = Field(
        description="every `Contract.ROLE` granted in this call (none when all were held)"
    )
    roles_not_granted: dict[str, str] = Field(
        description="`Contract.ROLE` the organisation should hold but could not be given, "
        "with the reason (e.g. the contract is not deployed on this chain)"
    )
    transactions: list[str]


CategoryName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CATEGORY_NAME)]


class MerchantApprovalRequest(BaseModel):
    """Approve a merchant for spending categories until a time."""

    categories: list[CategoryName] = Field(
        min_length=1,
        max_length=MAX_APPROVAL_CATEGORIES,
        description="registered category names, e.g. `fertilizer` (duplicates count once)",
    )
    valid_until: Int = Field(
        ge=1,
        le=UINT64_MAX,
        description="unix seconds (UTC); must be after the chain's latest block time",
    )

    @field_validator("categories")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        """Drop repeated names (approving twice is approving once), keeping the order."""
        return list(dict.fromkeys(names))


class MerchantApproval(BaseModel):
    """One category of a merchant approval request."""

    category: str
    category_id: str
    expires_at: int = Field(description="the approval's expiry on chain after this call")
    transaction: str | None = Field(
        description="the approveMerchant transaction; null when already approved until "
        "valid_until or later"
    )


class MerchantApprovals(BaseModel):
    """What approving a merchant did, per category."""

    organisation_id: int
    merchant: str
    valid_until: int
    approvals: list[MerchantApproval]
    transactions: list[str]


class MerchantRevocation(BaseModel):
    """A merchant's approval for one category, revoked."""

    organisation_id: int
    merchant: str
    category: str
    category_id: str
    transaction: str


def _tx(receipt: object) -> str:
    """The 0x-hex hash of a receipt's transaction."""
    return receipt["transactionHash"].to_0x_hex()  # type: ignore[index]


# ---------------------------------------------------------------------------- provisioning


@dataclass(frozen=True)
class _Grant:
    """A role to grant, on its contract."""

    role: ChainRole
    contract: Contract


def _plan_grants(
    chain: ChainClient, org: Organisation, platform: str, address: str
) -> tuple[list[_Grant], dict[str, str]]:
    """Roles the organisation lacks and can be granted, and those it cannot (with why)."""
    todo: list[_Grant] = []
    refused: dict[str, str] = {}
    for wanted in CHAIN_ROLES.get(org.role, ()):
        contract = deployed_contract(chain, wanted.contract)
        if contract is None:
            refused[wanted.label] = f"{wanted.contract} is not deployed on this chain"
        elif has_role(contract, wanted.role_id, address):
            continue
        elif address == platform:  # the contracts refuse self-grants (e.g. SettlementSelfGrant)
            refused[wanted.label] = "the platform account cannot grant a role to itself"
        else:
            todo.append(_Grant(wanted, contract))
    return todo, refused


def _require_grant_rights(grants: list[_Grant], platform: str) -> None:
    """409 before anything is sent unless the platform holds each role's admin role."""
    missing = [
        f"{g.role.label} (at {g.contract.address})"
        for g in grants
        if not has_role(
            g.contract, g.contract.functions.getRoleAdmin(g.role.role_id).call(), platform
        )
    ]
    if missing:
        raise Conflict(
            f"the platform account {platform} does not hold the admin role of "
            f"{', '.join(missing)}, so it cannot grant them; nothing was sent"
        )


def provision(chain: ChainClient, org: Organisation, fund_gas: bool) -> Provisioned:
    """Give the organisation gas (development) and every on-chain role of its role; idempotent."""
    assert org.id is not None
    platform = chain.sender(0)
    address = Web3.to_checksum_address(org.chain_address)
    grants, refused = _plan_grants(chain, org, platform.address, address)
    _require_grant_rights(grants, platform.address)
    sent: list[str] = []
    funded = 0
    if fund_gas and chain.w3.eth.get_balance(address) < DEV_GAS_FLOOR_WEI:
        sent.append(_tx(platform.transact({"to": address, "value": DEV_GAS_WEI}, gas=21_000)))
        funded = DEV_GAS_WEI
    for grant in grants:
        fn = grant.contract.functions.grantRole(grant.role.role_id, address)
        sent.append(_tx(platform.transact(fn)))
    granted = [g.role.label for g in grants]
    tea_granted = any(g.role.contract == contracts.TEA_TRACE for g in grants)
    return Provisioned(
        organisation_id=org.id,
        chain_address=address,
        funded_wei=funded,
        role_granted=org.role.value if tea_granted else None,
        roles_granted=granted,
        roles_not_granted=refused,
        transactions=sent,
    )


# ---------------------------------------------------------------------- merchant approvals


def _merchant_address(org: Organisation) -> str:
    """The organisation's chain address; 409 unless it is a merchant."""
    if org.role != Role.MERCHANT:
        raise Conflict(
            f"organisation {org.id} is a {org.role.value}, not a merchant: only merchant "
            "organisations are approved for spending categories"
        )
    return Web3.to_checksum_address(org.chain_address)


def _merchant_registry(chain: ChainClient) -> Contract:
    """The deployed MerchantRegistry; 503 when the lending contracts are not deployed."""
    registry = deployed_contract(chain, MERCHANT_REGISTRY)
    if registry is None:
        raise Unavailable(
            f"{MERCHANT_REGISTRY} is not deployed on this chain: run `tealedger deploy`"
        )
    return registry


def category_id(name: str) -> bytes:
    """A category name's id (lending's category_id); 422 for a name no registry can hold."""
    try:
        return lending_category_id(name)
    except UnicodeEncodeError:  # a lone surrogate from JSON: no registered name has one
        raise Invalid(f"category {name!r} is not valid UTF-8") from None


def _registered_ids(registry: Contract, names: list[str]) -> dict[str, bytes]:
    """Each name's category id; 422 naming every category the registry does not know."""
    ids = {name: category_id(name) for name in names}
    unknown = [n for n, cid in ids.items() if not registry.functions.isCategory(cid).call()]
    if unknown:
        raise Invalid(f"not a registered category: {', '.join(map(repr, unknown))}")
    return ids


def _require_future(chain: ChainClient, valid_until: int) -> None:
    """422 unless `valid_until` is after the latest block (the contract's clock, not ours)."""
    latest = chain.w3.eth.get_block("latest")["timestamp"]
    if valid_until <= latest:
        raise Invalid(
            f"valid_until {valid_until} is not in the future: the chain's latest block time "
            f"is {latest} (unix seconds)"
        )


def registrar_sender(chain: ChainClient) -> Sender:
    """The registrar's signer: development account 6 on a mnemonic, else the keystore account.

    MerchantRegistry keeps its admin and its registrars apart (an account cannot grant itself a
    role), so on development chains approvals are signed by the registrar that `deploy` set up,
    not by the admin account that signs everything else here.
    """
    if chain.settings.keystore is None and len(chain.accounts) > DEV_REGISTRAR:
        return chain.sender(DEV_REGISTRAR)
    return chain.sender(0)


def _require_registrar(registry: Contract, registrar: str) -> None:
    """409 unless the signing account holds REGISTRAR_ROLE on the registry."""
    if not has_role(registry, REGISTRAR_ROLE, registrar):
        raise Conflict(
            f"the registrar account {registrar} does not hold REGISTRAR_ROLE on "
            f"{MERCHANT_REGISTRY} {registry.address}: an admin of the registry must grant it "
            "(no account can grant itself a role); nothing was sent"
        )


def approve_merchant(
    chain: ChainClient, org: Organisation, body: MerchantApprovalRequest
) -> MerchantApprovals:
    """Approve a merchant for each category not already approved until `valid_until`."""
    assert org.id is not None
    merchant = _merchant_address(org)
    registry = _merchant_registry(chain)
    _require_future(chain, body.valid_until)
    ids = _registered_ids(registry, body.categories)
    registrar = registrar_sender(chain)
    _require_registrar(registry, registrar.address)
    fns = registry.functions
    done: list[MerchantApproval] = []
    for name, cid in ids.items():
        _, expires_at, revoked = fns.approval(merchant, cid).call()
        tx = None
        # Only ever extend: re-approving with an earlier expiry would shorten a live approval.
        if revoked or expires_at < body.valid_until:
            tx = _tx(registrar.transact(fns.approveMerchant(merchant, cid, body.valid_until)))
            expires_at = body.valid_until
        done.append(
            MerchantApproval(
                category=name, category_id="0x" + cid.hex(), expires_at=expires_at, transaction=tx
            )
        )
    return MerchantApprovals(
        organisation_id=org.id,
        merchant=merchant,
        valid_until=body.valid_until,
        approvals=done,
        transactions=[a.transaction for a in done if a.transaction],
    )


def revoke_merchant(chain: ChainClient, org: Organisation, category: str) -> MerchantRevocation:
    """Revoke a merchant's live approval for one category; 404 when there is none."""
    assert org.id is not None
    merchant = _merchant_address(org)
    registry = _merchant_registry(chain)
    cid = category_id(category)
    fns = registry.functions
    if not fns.isCategory(cid).call():
        raise NotFound(f"category {category!r} is not a registered category")
    if not fns.isApproved(merchant, cid).call():
        raise NotFound(
            f"organisation {org.id} has no live approval for {category!r} "
            "(never approved, expired or already revoked)"
        )
    registrar = registrar_sender(chain)
    _require_registrar(registry, registrar.address)
    receipt = registrar.transact(fns.revokeMerchant(merchant, cid, NO_REASON))
    return MerchantRevocation(
        organisation_id=org.id,
        merchant=merchant,
        category=category,
        category_id="0x" + cid.hex(),
        transaction=_tx(receipt),
    )
