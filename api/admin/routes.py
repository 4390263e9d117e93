"""Admin: organisations, their API keys, their on-chain roles and merchant approvals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from sqlmodel import func, select

from api.admin.chain_roles import (
    MAX_CATEGORY_NAME,
    MerchantApprovalRequest,
    MerchantApprovals,
    MerchantRevocation,
    Provisioned,
    approve_merchant,
    provision,
    revoke_merchant,
)
from api.core.deps import AdminOrg, ChainDep, SessionDep, SettingsDep
from api.core.errors import NotFound
from api.core.models import (
    ApiKey,
    ApiKeyCreated,
    ApiKeyPublic,
    Organisation,
    OrganisationCreate,
    OrganisationCreated,
    OrganisationPublic,
)
from api.core.organisations import create_organisation
from api.core.pagination import Page, PageDep
from api.core.security import mint_key, revoke
from api.core.types import RowIdPath

router = APIRouter(prefix="/admin", tags=["admin"])

CategoryPath = Annotated[
    str, Path(min_length=1, max_length=MAX_CATEGORY_NAME, description="a category name")
]


def _key_out(record: ApiKey, secret: str | None = None) -> ApiKeyPublic | ApiKeyCreated:
    """Serialize a key, with its secret only at creation."""
    fields = {
        "id": record.id,
        "prefix": record.prefix,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
    }
    return ApiKeyCreated(**fields, key=secret) if secret else ApiKeyPublic(**fields)


@router.post(
    "/organisations", status_code=status.HTTP_201_CREATED, response_model=OrganisationCreated
)
def create_org(
    body: OrganisationCreate, session: SessionDep, settings: SettingsDep, _admin: AdminOrg
) -> OrganisationCreated:
    """Create an organisation with its chain key and first API key (shown once)."""
    password = settings.org_keystore_password.get_secret_value()
    org, key = create_organisation(session, body, settings.keystore_dir, password)
    public = OrganisationPublic.model_validate(org, from_attributes=True)
    created = _key_out(key.record, key.secret)
    assert isinstance(created, ApiKeyCreated)
    return OrganisationCreated(organisation=public, api_key=created)


@router.get("/organisations", response_model=Page[OrganisationPublic])
def list_orgs(session: SessionDep, page: PageDep, _admin: AdminOrg) -> Page[OrganisationPublic]:
    """All organisations, oldest first."""
    total = session.exec(select(func.count()).select_from(Organisation)).one()
    rows = session.exec(
        select(Organisation).order_by(Organisation.id).offset(page.offset).limit(page.limit)
    ).all()
    items = [OrganisationPublic.model_validate(o, from_attributes=True) for o in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


def _org_or_404(session: SessionDep, org_id: int) -> Organisation:
    """The organisation or 404."""
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} does not exist")
    return org


@router.post(
    "/organisations/{org_id}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
)
def add_key(org_id: RowIdPath, session: SessionDep, _admin: AdminOrg) -> ApiKeyCreated:
    """Issue another key for an organisation (e.g. to rotate)."""
    _org_or_404(session, org_id)
    key = mint_key(org_id)
    session.add(key.record)
    session.commit()
    session.refresh(key.record)
    created = _key_out(key.record, key.secret)
    assert isinstance(created, ApiKeyCreated)
    return created


@router.get("/organisations/{org_id}/keys", response_model=list[ApiKeyPublic])
def list_keys(org_id: RowIdPath, session: SessionDep, _admin: AdminOrg) -> list[ApiKeyPublic]:
    """An organisation's keys (prefixes only)."""
    _org_or_404(session, org_id)
    rows = session.exec(select(ApiKey).where(ApiKey.organisation_id == org_id)).all()
    return [_key_out(k) for k in rows]


@router.delete("/keys/{key_id}", response_model=ApiKeyPublic)
def revoke_key(key_id: RowIdPath, session: SessionDep, _admin: AdminOrg) -> ApiKeyPublic:
    """Revoke a key at once."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} does not exist")
    revoke(session, key)
    session.refresh(key)
    return _key_out(key)


@router.post("/organisations/{org_id}/provision", response_model=Provisioned)
def provision_org(
    org_id: RowIdPath,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    _admin: AdminOrg,
) -> Provisioned:
    """Put the organisation on chain: gas on development chains, and its on-chain roles."""
    org = _org_or_404(session, org_id)
    return provision(chain, org, fund_gas=settings.environment != "production")


@router.post("/organisations/{org_id}/merchant-approvals", response_model=MerchantApprovals)
def approve_merchant_categories(
    org_id: RowIdPath,
    body: MerchantApprovalRequest,
    session: SessionDep,
    chain: ChainDep,
    _admin: AdminOrg,
) -> MerchantApprovals:
    """Approve a merchant for spending categories until `valid_until` (signed by the registrar)."""
    org = _org_or_404(session, org_id)
    return approve_merchant(chain, org, body)


@router.delete(
    "/organisations/{org_id}/merchant-approvals/{category}", response_model=MerchantRevocation
)
def revoke_merchant_category(
    org_id: RowIdPath,
    category: CategoryPath,
    session: SessionDep,
    chain: ChainDep,
    _admin: AdminOrg,
) -> MerchantRevocation:
    """Revoke a merchant's live approval for one category (signed by the registrar)."""
    org = _org_or_404(session, org_id)
    return revoke_merchant(chain, org, category)
