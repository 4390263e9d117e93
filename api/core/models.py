"""The service's tables: organisations and their API keys (stored hashed, shown once, revocable),
and the cooperatives' registry of members' personal data, plots and harvest receipt numbers.

Only pseudonyms go on chain. A farmer's name and national id live here, in `registry_farmer`,
and are erased on request (the pseudonym row stays, so the chain history keeps its meaning).
Rows are written only after the chain accepted the transaction they describe.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel
from pydantic import Field as PydField
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from api.core.types import Text


class Role(StrEnum):
    """What an organisation may do; maps onto on-chain roles where one exists."""

    ADMIN = "admin"
    COOPERATIVE = "cooperative"
    PROCESSOR = "processor"
    DISTRIBUTOR = "distributor"
    INSPECTOR = "inspector"
    LENDER = "lender"
    MERCHANT = "merchant"
    FARMER = "farmer"
    REGULATOR = "regulator"

    @property
    def label_zh(self) -> str:
        """The role's name in Chinese."""
        return ROLE_NAMES_ZH[self]


ROLE_NAMES_ZH = {
    Role.ADMIN: "平台管理",
    Role.COOPERATIVE: "合作社",
    Role.PROCESSOR: "加工厂",
    Role.DISTRIBUTOR: "经销商",
    Role.INSPECTOR: "质检机构",
    Role.LENDER: "贷款机构",
    Role.MERCHANT: "商户",
    Role.FARMER: "茶农",
    Role.REGULATOR: "监管机构",
}


def utcnow() -> datetime:
    """Timezone-aware now."""
    return datetime.now(UTC)


class OrganisationBase(SQLModel):
    """Fields a client may set when creating an organisation."""

    name: str = Field(min_length=1, max_length=120)
    role: Role


class Organisation(OrganisationBase, table=True):
    """An organisation; its chain address's key is held by the service in a keystore."""

    __tablename__ = "api_organisation"

    id: int | None = Field(default=None, primary_key=True)
    chain_address: str = Field(index=True, max_length=42)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class OrganisationCreate(OrganisationBase):
    """Request body: server sets id, address, status and the key."""

    name: Text = Field(min_length=1, max_length=120)


class OrganisationPublic(OrganisationBase):
    """What the API shows of an organisation."""

    id: int
    chain_address: str
    active: bool
    created_at: datetime


class ApiKey(SQLModel, table=True):
    """An API key: only its SHA-256 is stored; `prefix` identifies it in listings."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="api_organisation.id", index=True)
    prefix: str = Field(max_length=16, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class RateBucket(SQLModel, table=True):
    """A caller's token bucket shared by every service process on a PostgreSQL database
    (`api.core.limits.SharedRateLimiter`): tokens left, when last charged (unix seconds by the
    database's clock, so processes on several hosts agree) and whether that charge passed."""

    __tablename__ = "api_rate_bucket"

    caller: str = Field(primary_key=True, max_length=80)
    tokens: float
    updated_at: float = Field(index=True)
    allowed: bool


class ConsentRevocation(SQLModel, table=True):
    """A farmer's revocation of a lender's consent made through this service, written before
    the revocation is relayed: every service process on the database refuses the lender's next
    profile read at once, without waiting for the indexer (`api.core.consent_gate`).

    `block_number` is the block the revocation was mined in (the chain's head before it while it
    is being relayed); an indexed grant in a later block supersedes the row, and a grant
    through the service deletes it."""

    __tablename__ = "consent_revocation"

    farmer: str = Field(primary_key=True, max_length=66)
    lender: str = Field(primary_key=True, max_length=42)
    block_number: int
    revoked_at: datetime = Field(default_factory=utcnow)


class PageLogin(SQLModel, table=True):
    """A browser's login: the cookie holds a random token, only its SHA-256 is stored here.

    Logging out revokes the row, so a copied cookie dies with the session; revoking the key
    it was opened with ends it too. Expired and revoked rows are pruned at every login.
    """

    __tablename__ = "api_page_login"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    api_key_id: int = Field(foreign_key="api_key.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None


class ApiKeyPublic(BaseModel):
    """A key as listed (never the secret)."""

    id: int
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    """A new key: the secret is in this response and nowhere else, ever."""

    key: str = PydField(description="Shown once; store it now.")


class OrganisationCreated(BaseModel):
    """Response to creating an organisation: the organisation and its first key."""

    organisation: OrganisationPublic
    api_key: ApiKeyCreated


# ------------------------------------------------------------------------------------ registry


class Farmer(SQLModel, table=True):
    """A member farmer: pseudonym, owning cooperative, personal fields (nullable: erasable)."""

    __tablename__ = "registry_farmer"

    id: int | None = Field(default=None, primary_key=True)
    farmer_id: str = Field(max_length=66, unique=True, description="0x pseudonym on chain")
    cooperative_id: int = Field(foreign_key="api_organisation.id", index=True)
    name: str | None = Field(default=None, max_length=120)
    national_id: str | None = Field(default=None, max_length=18)
    wallet_org_id: int | None = Field(default=None, foreign_key="api_organisation.id", unique=True)
    wallet: str | None = Field(default=None, max_length=42)
    registered_tx: str | None = Field(default=None, max_length=66)
    created_at: datetime = Field(default_factory=utcnow)
    erased_at: datetime | None = None


class Plot(SQLModel, table=True):
    """A registered plot (the label is erased with its farmer's personal data)."""

    __tablename__ = "registry_plot"

    id: int | None = Field(default=None, primary_key=True)
    plot_id: str = Field(max_length=66, unique=True)
    farmer_id: str = Field(max_length=66, index=True)
    cooperative_id: int = Field(foreign_key="api_organisation.id", index=True)
    label: str | None = Field(default=None, max_length=60)
    area_centi_mu: int
    variety: int = 0
    registered_tx: str | None = Field(default=None, max_length=66)
    created_at: datetime = Field(default_factory=utcnow)


class HarvestRef(SQLModel, table=True):
    """A cooperative's receipt number of a harvest lot it recorded through the service.

    Everything else about the lot is on chain and in the indexer's `harvest` table; the receipt
    number is only hashed into the lot's data hash, so it is kept here to show it again.
    """

    __tablename__ = "registry_harvest_ref"

    lot: str = Field(max_length=66, primary_key=True)
    cooperative_id: int = Field(foreign_key="api_organisation.id", index=True)
    record_ref: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class OfferDecline(SQLModel, table=True):
    """A farmer's refusal of a loan offer (the offer itself lives in loan_offer)."""

    __tablename__ = "farmer_offer_decline"

    offer_id: str = Field(max_length=32, primary_key=True)
    farmer_id: str = Field(max_length=66, index=True)
    declined_at: datetime = Field(default_factory=utcnow)


# ------------------------------------------------------------------------------------ products


class Product(SQLModel, table=True):
    """A cooperative's packaged product: its GTIN (14 digits, check digit verified) and names.

    Master data, not chain data: a GTIN names what is in a package, the lot code which lot it
    came from (`product_lot`). A retired product keeps its row, so old packages still resolve.
    """

    __tablename__ = "product"

    id: int | None = Field(default=None, primary_key=True)
    gtin: str = Field(max_length=14, unique=True)
    cooperative_id: int = Field(foreign_key="api_organisation.id", index=True)
    name_zh: str = Field(max_length=120)
    name_en: str = Field(max_length=120)
    grade: int | None = None
    flush: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    retired_at: datetime | None = None


class ProductLot(SQLModel, table=True):
    """A lot packed as a product: (GTIN, lot code) is what AI (01) and AI (10) carry."""

    __tablename__ = "product_lot"
    __table_args__ = (UniqueConstraint("gtin", "lot_code"),)

    id: int | None = Field(default=None, primary_key=True)
    lot: str = Field(max_length=66, unique=True, description="0x lot id on chain")
    gtin: str = Field(max_length=14, foreign_key="product.gtin", index=True)
    lot_code: str = Field(max_length=20)
    cooperative_id: int = Field(foreign_key="api_organisation.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
