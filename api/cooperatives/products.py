"""A cooperative's products (GTINs) and the lots it packs as them (GS1 lot codes).

Master data of the service, not of the chain: a product is a GTIN with Chinese and English
names; a lot packed as a product gets a lot code for AI (10), generated from the lot id or the
cooperative's own, and the pair (GTIN, lot code) resolves to the lot
(api/public/resolver.py). A cooperative assigns only lots it made, as the index has them
(a harvest it recorded, or a lot it processed); a code once assigned is printed on packages, so
it never changes, and a retired product keeps its lots resolving.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, BeforeValidator
from pydantic import Field as PydField
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from api.core.errors import Conflict, Forbidden, NotFound
from api.core.ids import hex32, parse_id
from api.core.indexed import indexed_read
from api.core.models import Organisation, Product, ProductLot, utcnow
from api.core.pagination import Page, PageParams
from api.core.settings import ApiSettings
from api.core.types import Text
from indexer.models import Harvest, LotProduced
from traceability.digital_link import (
    DigitalLinkError,
    check_lot_code,
    digital_link,
    lot_code_for,
    normalise_gtin,
)
from traceability.models import Grade

Flush = Literal["spring", "summer", "autumn", "winter"]


def _gtin(value: object) -> str:
    """A GTIN-8/12/13/14 string with a valid check digit, as 14 digits."""
    if not isinstance(value, str):
        raise ValueError("a GTIN is a string of 8, 12, 13 or 14 digits")
    try:
        return normalise_gtin(value[:40])
    except DigitalLinkError as exc:
        raise ValueError(str(exc)) from None


def _lot_code(value: object) -> str:
    """A lot code of GS1 character set 82, 1-20 characters."""
    if not isinstance(value, str):
        raise ValueError("a lot code is a string")
    try:
        return check_lot_code(value.strip()[:40])
    except DigitalLinkError as exc:
        raise ValueError(str(exc)) from None


GtinIn = Annotated[
    str,
    BeforeValidator(_gtin),
    PydField(
        description="GTIN-8, -12, -13 or -14 with its check digit; stored as 14 digits",
        json_schema_extra={"example": "6901234567892"},
    ),
]
LotCodeIn = Annotated[
    str,
    BeforeValidator(_lot_code),
    PydField(
        description="1-20 characters of GS1 character set 82 (A-Z a-z 0-9 !\"%&'()*+,-./:;<=>?_)",
        json_schema_extra={"example": "2026SP-01"},
    ),
]
GtinPath = Annotated[
    str, Path(min_length=8, max_length=14, pattern=r"^[0-9]+$", description="the GTIN")
]


class ProductCreate(BaseModel):
    """A product to register: its GTIN and names; grade and flush when the product has one."""

    gtin: GtinIn
    name_zh: Text = PydField(max_length=120, description="the product's name in Chinese")
    name_en: Text = PydField(max_length=120, description="the product's name in English")
    grade: Grade | None = PydField(default=None, description="1 特级 special ... 5 四级 fourth")
    flush: Flush | None = PydField(default=None, description="the season's flush")


class ProductPublic(BaseModel):
    """A product as its cooperative sees it, with its Digital Link and lot count."""

    gtin: str
    name_zh: str
    name_en: str
    grade: int | None
    flush: str | None
    created_at: datetime
    retired_at: datetime | None
    digital_link: str
    lots: int


class ProductLotIn(BaseModel):
    """Pack a lot as a product; without `lot_code` the service derives one from the lot id."""

    gtin: GtinIn
    lot_code: LotCodeIn | None = None


class ProductLotPublic(BaseModel):
    """A packed lot: its product, lot code, the Digital Link its QR code carries."""

    lot: str
    gtin: str
    lot_code: str
    name_zh: str
    name_en: str
    digital_link: str
    trace_url: str
    created_at: datetime


def _public(product: Product, base: str, lots: int) -> ProductPublic:
    """What the API shows of a product."""
    return ProductPublic(
        gtin=product.gtin,
        name_zh=product.name_zh,
        name_en=product.name_en,
        grade=product.grade,
        flush=product.flush,
        created_at=product.created_at,
        retired_at=product.retired_at,
        digital_link=digital_link(base, product.gtin),
        lots=lots,
    )


def _lot_public(row: ProductLot, product: Product, base: str) -> ProductLotPublic:
    """What the API shows of a packed lot."""
    return ProductLotPublic(
        lot=row.lot,
        gtin=row.gtin,
        lot_code=row.lot_code,
        name_zh=product.name_zh,
        name_en=product.name_en,
        digital_link=digital_link(base, row.gtin, row.lot_code),
        trace_url=f"{base}/trace/{row.lot}",
        created_at=row.created_at,
    )


def _lot_counts(session: Session, gtins: list[str]) -> dict[str, int]:
    """How many lots each product has packed."""
    if not gtins:
        return {}
    rows = session.exec(
        select(ProductLot.gtin, func.count())
        .where(col(ProductLot.gtin).in_(gtins))
        .group_by(col(ProductLot.gtin))
    )
    return {gtin: int(n) for gtin, n in rows}


def create_product(
    session: Session, coop: Organisation, body: ProductCreate, base: str
) -> ProductPublic:
    """Register a product; a GTIN registered already (by anyone) is 409."""
    existing = session.exec(select(Product).where(Product.gtin == body.gtin)).first()
    if existing is not None:
        whose = "yours" if existing.cooperative_id == coop.id else "another cooperative's"
        raise Conflict(f"GTIN {body.gtin} is registered already ({whose})")
    product = Product(
        gtin=body.gtin,
        cooperative_id=coop.id,
        name_zh=body.name_zh,
        name_en=body.name_en,
        grade=int(body.grade) if body.grade is not None else None,
        flush=body.flush,
    )
    session.add(product)
    try:
        session.commit()
    except IntegrityError as exc:  # another request registered it in between
        session.rollback()
        raise Conflict(f"GTIN {body.gtin} is registered already") from exc
    session.refresh(product)
    return _public(product, base, 0)


def list_products(
    session: Session, coop: Organisation, page: PageParams, base: str, retired: bool = False
) -> Page[ProductPublic]:
    """The cooperative's products, newest first; retired ones only when asked for."""
    mine = Product.cooperative_id == coop.id
    where = mine if retired else (mine & col(Product.retired_at).is_(None))
    total = session.exec(select(func.count()).select_from(Product).where(where)).one()
    rows = session.exec(
        select(Product)
        .where(where)
        .order_by(col(Product.id).desc())
        .offset(page.offset)
        .limit(page.limit)
    ).all()
    counts = _lot_counts(session, [p.gtin for p in rows])
    items = [_public(p, base, counts.get(p.gtin, 0)) for p in rows]
    return Page(items=items, total=int(total), limit=page.limit, offset=page.offset)


def own_product(session: Session, coop: Organisation, gtin: str) -> Product:
    """One of the cooperative's products by any GTIN form: 404 unknown, 403 another's."""
    key = normalise_gtin(gtin)
    product = session.exec(select(Product).where(Product.gtin == key)).first()
    if product is None:
        raise NotFound(f"no product has GTIN {key}")
    if product.cooperative_id != coop.id:
        raise Forbidden(f"GTIN {key} is another cooperative's product")
    return product


def retire_product(session: Session, coop: Organisation, gtin: str, base: str) -> ProductPublic:
    """Retire a product: no new lots are packed as it; its lots keep resolving."""
    product = own_product(session, coop, gtin)
    if product.retired_at is None:
        product.retired_at = utcnow()
        session.add(product)
        session.commit()
        session.refresh(product)
    return _public(product, base, _lot_counts(session, [product.gtin]).get(product.gtin, 0))


def lot_maker(settings: ApiSettings, lot: bytes) -> bytes | None:
    """Who made a lot as the index has it: the harvest's cooperative or the processor."""
    with indexed_read(settings.database_url) as conn:
        made = conn.execute(
            sa_select(Harvest.cooperative).where(Harvest.lot == lot)  # type: ignore[arg-type]
        ).first()
        if made is None:
            made = conn.execute(
                sa_select(LotProduced.processor).where(LotProduced.lot == lot)  # type: ignore[arg-type]
            ).first()
    return bytes(made[0]) if made is not None else None


def assign_lot(
    session: Session,
    settings: ApiSettings,
    coop: Organisation,
    lot: str,
    body: ProductLotIn,
    base: str,
) -> ProductLotPublic:
    """Pack one of your lots as one of your products; the same assignment again is a no-op."""
    key = parse_id(lot, "lot")
    product = own_product(session, coop, body.gtin)
    maker = lot_maker(settings, key)
    if maker is None:
        raise NotFound(
            f"lot {hex32(key)} is not indexed so far (a lot recorded moments ago appears once "
            "the indexer has caught up)"
        )
    if "0x" + maker.hex() != coop.chain_address.lower():
        raise Forbidden(f"lot {hex32(key)} was not made by your cooperative")
    code = body.lot_code or lot_code_for(key)
    existing = session.exec(select(ProductLot).where(ProductLot.lot == hex32(key))).first()
    if existing is not None:
        if (existing.gtin, existing.lot_code) == (product.gtin, code) or (
            body.lot_code is None and existing.gtin == product.gtin
        ):
            return _lot_public(existing, product, base)
        raise Conflict(
            f"lot {hex32(key)} is packed already as GTIN {existing.gtin} lot "
            f"{existing.lot_code}: codes on printed packages do not change"
        )
    if product.retired_at is not None:
        raise Conflict(f"product {product.gtin} is retired: register a new one to pack lots")
    row = ProductLot(lot=hex32(key), gtin=product.gtin, lot_code=code, cooperative_id=coop.id)
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(
            f"lot code {code} of GTIN {product.gtin} belongs to another lot: choose another"
        ) from exc
    session.refresh(row)
    return _lot_public(row, product, base)


def product_lots(
    session: Session, coop: Organisation, gtin: str, base: str, limit: int = 100
) -> list[ProductLotPublic]:
    """The lots packed as one of your products, newest first."""
    product = own_product(session, coop, gtin)
    rows = session.exec(
        select(ProductLot)
        .where(ProductLot.gtin == product.gtin)
        .order_by(col(ProductLot.id).desc())
        .limit(limit)
    ).all()
    return [_lot_public(r, product, base) for r in rows]


class OwnLot(BaseModel):
    """A lot the cooperative made, as the products page offers it for packing."""

    lot: str
    kind: Literal["fresh_leaf", "made_tea"]
    grams: int
    grade: int | None
    picked_at: int | None
    block_number: int


def own_lots(settings: ApiSettings, coop: Organisation, limit: int = 50) -> list[OwnLot]:
    """The cooperative's newest lots in the index: harvests it recorded and lots it processed."""
    me = bytes.fromhex(coop.chain_address[2:])
    h, p = Harvest.__table__.c, LotProduced.__table__.c  # type: ignore[attr-defined]
    with indexed_read(settings.database_url) as conn:
        leaf = conn.execute(
            sa_select(h.lot, h.grams, h.grade, h.picked_at, h.block_number)
            .where(h.cooperative == me)
            .order_by(h.block_number.desc(), h.log_index.desc())
            .limit(limit)
        ).all()
        made = conn.execute(
            sa_select(p.lot, p.grams, p.block_number)
            .where(p.processor == me)
            .order_by(p.block_number.desc(), p.log_index.desc())
            .limit(limit)
        ).all()
    lots = [
        OwnLot(lot=hex32(r.lot), kind="fresh_leaf", grams=r.grams, grade=r.grade,
               picked_at=r.picked_at, block_number=r.block_number)
        for r in leaf
    ] + [
        OwnLot(lot=hex32(r.lot), kind="made_tea", grams=r.grams, grade=None, picked_at=None,
               block_number=r.block_number)
        for r in made
    ]  # fmt: skip
    return sorted(lots, key=lambda x: -x.block_number)[:limit]


def packed_lots(
    session: Session, coop: Organisation, base: str, limit: int = 50
) -> list[ProductLotPublic]:
    """The cooperative's newest packed lots, of every product."""
    rows = session.exec(
        select(ProductLot, Product)
        .join(Product, col(Product.gtin) == col(ProductLot.gtin))
        .where(ProductLot.cooperative_id == coop.id)
        .order_by(col(ProductLot.id).desc())
        .limit(limit)
    ).all()
    return [_lot_public(row, product, base) for row, product in rows]
