"""Cooperatives: members, plots, harvests and their lots.

Members' personal data stays in the database; the chain gets pseudonyms. Writes go to the
chain first and return their transaction hashes and the ids they created; a refused transaction
is 409 with the contract's decoded error, an unreachable node 503 with nothing written.
Every route that names a farmer, plot or lot checks that it belongs to the caller (403) and
exists (404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import (
    APIRouter,
    Body,
    Depends,
    File,
    Form,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)

from api.cooperatives import (
    consents,
    harvests,
    loans,
    members,
    offers,
    products,
    roll,
    roll_file,
)
from api.cooperatives.consents import (
    ConsentBatch,
    ConsentBatchOut,
    ConsentRequest,
    SignedConsent,
)
from api.cooperatives.harvests import MAX_HARVEST_BATCH, HarvestIn, HarvestLots, HarvestSubmission
from api.cooperatives.loans import (
    MemberLoan,
    MemberLoanDetail,
    OrderBatch,
    OrderCreate,
    OrderPlaced,
    OrderPublic,
)
from api.cooperatives.offers import MemberOffer, MemberOfferToSign
from api.cooperatives.products import (
    GtinPath,
    ProductCreate,
    ProductLotIn,
    ProductLotPublic,
    ProductPublic,
)
from api.cooperatives.roll import MemberRoll, MemberRollOut
from api.cooperatives.roll_file import RollFileOut
from api.cooperatives.schemas import (
    FarmerCreate,
    FarmerPublic,
    FarmerRegistered,
    HarvestLotPublic,
    PlotCreate,
    PlotPublic,
    PlotRegistered,
)
from api.core import suppliers
from api.core.acceptance import AcceptanceIn
from api.core.consent import MAX_CONSENT_DAYS, ConsentChanged, ConsentIn
from api.core.deps import ChainDep, SessionDep, SettingsDep, require_role
from api.core.links import BaseUrlDep
from api.core.models import Organisation, Role
from api.core.pagination import Page, PageDep
from api.core.suppliers import PartnerOut
from api.core.types import MAX_ROW_ID, Id32Path

router = APIRouter(prefix="/cooperatives", tags=["cooperatives"])

CoopOrg = Annotated[Organisation, Depends(require_role(Role.COOPERATIVE))]
DELIVER_TO_TEXT = "the organisation id of the factory the leaf was delivered to (it holds the lots)"
DeliverTo = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID, description=DELIVER_TO_TEXT)]
EscrowPath = Annotated[
    str, Path(min_length=42, max_length=42, pattern="^0x[0-9a-fA-F]{40}$", description="escrow")
]
HarvestBatch = Annotated[
    list[HarvestIn], Body(min_length=1, max_length=MAX_HARVEST_BATCH, description="records")
]

# ------------------------------------------------------------------------------------ farmers


@router.post("/farmers", status_code=status.HTTP_201_CREATED, response_model=FarmerRegistered)
def register_farmer(
    body: FarmerCreate,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    coop: CoopOrg,
) -> FarmerRegistered:
    """Register a member: the pseudonym goes on chain, name and national id stay here."""
    return members.register_farmer(session, chain, settings, coop, body)


@router.post("/farmers/batch", response_model=MemberRollOut)
def register_member_roll(
    body: MemberRoll, session: SessionDep, settings: SettingsDep, chain: ChainDep, coop: CoopOrg
) -> MemberRollOut:
    """Register up to 500 members with their plots at once, refusals with their reasons.

    Each member is checked as the single registration checks it (a refused one sends and stores
    nothing); the rest go on chain in pipelined batches, then into the database. Sending the
    same roll again refuses the members it registered."""
    return roll.register_members(session, chain, settings, coop, body)


@router.post("/farmers/upload", response_model=RollFileOut)
def upload_member_roll(
    file: Annotated[UploadFile, File(description="CSV member roll, one row per plot")],
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    coop: CoopOrg,
) -> RollFileOut:
    """Register a CSV member roll: one row per plot, refusals listed by line.

    Columns: national_id, name, and optionally wallet, land_reference, area_mu, variety, label
    and location (or 身份证号, 姓名, 钱包地址, 承包合同号, 面积(亩), 品种代码, 地块名称, 位置). A
    member's further plots repeat its national id; UTF-8, UTF-16 or GBK; up to 500 members."""
    content = file.file.read()
    return roll_file.register_roll_file(
        session, chain, settings, coop, file.filename or "", content
    )


@router.get("/farmers", response_model=Page[FarmerPublic])
def list_farmers(session: SessionDep, page: PageDep, coop: CoopOrg) -> Page[FarmerPublic]:
    """Your members, in registration order (national ids masked)."""
    return members.list_farmers(session, coop, page)


@router.get("/farmers/{farmer_id}", response_model=FarmerPublic)
def get_farmer(
    farmer_id: Id32Path, session: SessionDep, chain: ChainDep, coop: CoopOrg
) -> FarmerPublic:
    """One of your members, with its status on chain."""
    return members.farmer_detail(session, chain, coop, farmer_id)


@router.delete("/farmers/{farmer_id}/personal-data", response_model=FarmerPublic)
def erase_farmer_personal_data(
    farmer_id: Id32Path, session: SessionDep, chain: ChainDep, coop: CoopOrg
) -> FarmerPublic:
    """Erase a member's name, national id and plot labels on request; the pseudonym stays."""
    row = members.own_farmer(session, chain, coop, farmer_id)
    return members.erase_personal_data(session, row)


@router.get("/farmers/{farmer_id}/consent-request", response_model=ConsentRequest)
def member_consent_request(
    farmer_id: Id32Path,
    session: SessionDep,
    chain: ChainDep,
    coop: CoopOrg,
    lender_org_id: Annotated[int, Query(ge=1, le=MAX_ROW_ID, description="the lender")],
    days: Annotated[int, Query(ge=1, le=MAX_CONSENT_DAYS, description="how long")] = 365,
) -> ConsentRequest:
    """What a member's own wallet app signs to let a lender read their profile."""
    body = ConsentIn(lender_org_id=lender_org_id, days=days)
    return consents.consent_request(session, chain, coop, farmer_id, body)


@router.post(
    "/farmers/{farmer_id}/consents", status_code=status.HTTP_201_CREATED,
    response_model=ConsentChanged,
)  # fmt: skip
def relay_member_consent(
    farmer_id: Id32Path,
    body: SignedConsent,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    coop: CoopOrg,
) -> ConsentChanged:
    """Relay a member's wallet-signed consent for a lender (you pay the gas)."""
    return consents.relay_consent(session, chain, settings, coop, farmer_id, body)


@router.post("/consents/batch", response_model=ConsentBatchOut)
def relay_member_consents(
    body: ConsentBatch, session: SessionDep, settings: SettingsDep, chain: ChainDep, coop: CoopOrg
) -> ConsentBatchOut:
    """Relay up to 200 members' wallet-signed consents at once, refusals with their reasons.

    Each is checked as the single relay checks it, then the rest are sent back to back."""
    return consents.relay_consents(session, chain, settings, coop, body)


# ------------------------------------------------------------------------------------ plots


@router.post("/plots", status_code=status.HTTP_201_CREATED, response_model=PlotRegistered)
def register_plot(
    body: PlotCreate, session: SessionDep, settings: SettingsDep, chain: ChainDep, coop: CoopOrg
) -> PlotRegistered:
    """Register a plot of one of your members (its id derives from the land reference)."""
    return members.register_plot(session, chain, settings, coop, body)


@router.get("/plots", response_model=Page[PlotPublic])
def list_plots(
    session: SessionDep,
    chain: ChainDep,
    page: PageDep,
    coop: CoopOrg,
    farmer_id: Annotated[str | None, Query(description="only this member's plots")] = None,
) -> Page[PlotPublic]:
    """Your plots, optionally of one member."""
    return members.list_plots(session, chain, coop, page, farmer_id)


# ------------------------------------------------------------------------------------ harvests


@router.post("/harvests", response_model=HarvestSubmission)
def record_harvests(
    items: HarvestBatch,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    coop: CoopOrg,
    deliver_to_org_id: DeliverTo = None,
) -> HarvestSubmission:
    """Record a JSON list of pickings: per-record outcomes, valid ones recorded, never twice.

    A record naming another cooperative's farmer, an unknown plot or a deactivated farmer is
    `rejected` with the reason; one already on chain is a `duplicate`. With
    `deliver_to_org_id`, the leaf was delivered that day to that factory: the new lots are
    held by it (it must accept your deliveries: `GET /cooperatives/consignees`).
    """
    parsed = harvests.harvests_from_body(items)
    return harvests.submit_harvests(session, chain, settings, coop, parsed, deliver_to_org_id)


@router.post("/harvests/upload", response_model=HarvestSubmission)
def upload_harvests(
    file: Annotated[UploadFile, File(description="CSV or JSON harvest file")],
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    coop: CoopOrg,
    deliver_to_org_id: Annotated[
        int | None, Form(ge=1, le=MAX_ROW_ID, description=DELIVER_TO_TEXT)
    ] = None,
) -> HarvestSubmission:
    """Record a CSV/JSON file: invalid rows are listed in `errors`, valid rows are recorded.

    Columns: farmer, plot, grams, grade, picked_at, and optionally record_ref and data_hash
    (the format of `tealedger harvest`); in a CSV, `farmer` may be the member number and `plot`
    the plot's name, as the members page shows them. Uploading the same file again records
    nothing twice. `deliver_to_org_id` as for `POST /cooperatives/harvests`.
    """
    parsed = harvests.parse_upload(file.filename or "", file.file.read(), session, coop)
    return harvests.submit_harvests(session, chain, settings, coop, parsed, deliver_to_org_id)


@router.get("/consignees", response_model=list[PartnerOut])
def list_consignees(session: SessionDep, chain: ChainDep, coop: CoopOrg) -> list[PartnerOut]:
    """The factories and other members that accept your deliveries (`deliver_to_org_id`)."""
    return suppliers.consignees(session, chain, coop)


@router.get("/lots", response_model=HarvestLots)
def list_lots(
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    page: PageDep,
    coop: CoopOrg,
    base: BaseUrlDep,
) -> HarvestLots:
    """Your harvest lots, newest first, with their state on chain and trace links."""
    return harvests.list_lots(session, chain, settings, coop, page, base)


@router.get("/lots/{lot}", response_model=HarvestLotPublic)
def get_lot(
    lot: Id32Path,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    coop: CoopOrg,
    base: BaseUrlDep,
) -> HarvestLotPublic:
    """One of your harvest lots."""
    return harvests.lot_detail(session, chain, settings, coop, lot, base)


# ------------------------------------------------------------------------------------ products


@router.post("/products", status_code=status.HTTP_201_CREATED, response_model=ProductPublic)
def create_product(
    body: ProductCreate, session: SessionDep, coop: CoopOrg, base: BaseUrlDep
) -> ProductPublic:
    """Register a product by its GTIN (check digit verified; 409 if registered already)."""
    return products.create_product(session, coop, body, base)


@router.get("/products", response_model=Page[ProductPublic])
def list_products(
    session: SessionDep,
    page: PageDep,
    coop: CoopOrg,
    base: BaseUrlDep,
    retired: Annotated[bool, Query(description="retired products too")] = False,
) -> Page[ProductPublic]:
    """Your products, newest first, with their Digital Link and how many lots they packed."""
    return products.list_products(session, coop, page, base, retired)


@router.post("/products/{gtin}/retire", response_model=ProductPublic)
def retire_product(
    gtin: GtinPath, session: SessionDep, coop: CoopOrg, base: BaseUrlDep
) -> ProductPublic:
    """Retire a product: no new lots are packed as it; its packed lots keep resolving."""
    return products.retire_product(session, coop, gtin, base)


@router.get("/products/{gtin}/lots", response_model=list[ProductLotPublic])
def product_lots(
    gtin: GtinPath, session: SessionDep, coop: CoopOrg, base: BaseUrlDep
) -> list[ProductLotPublic]:
    """The lots packed as one of your products (the newest 100), with their Digital Links."""
    return products.product_lots(session, coop, gtin, base)


@router.put("/lots/{lot}/product", response_model=ProductLotPublic)
def assign_product(
    lot: Id32Path,
    body: ProductLotIn,
    session: SessionDep,
    settings: SettingsDep,
    coop: CoopOrg,
    base: BaseUrlDep,
) -> ProductLotPublic:
    """Pack a lot you made as one of your products, with a lot code for its QR code."""
    return products.assign_lot(session, settings, coop, lot, body, base)


# ------------------------------------------------------------------------------------ loans

OrderIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the order's number")]


@router.get("/offers", response_model=Page[MemberOffer])
def list_member_offers(
    request: Request,
    session: SessionDep,
    page: PageDep,
    coop: CoopOrg,
    waiting: Annotated[bool, Query(description="only offers not signed yet")] = False,
) -> Page[MemberOffer]:
    """Loan offers to your members, newest first (a member signs at your desk)."""
    return offers.member_offers(session, request.app.state.engine, coop, page, waiting)


@router.get("/offers/{offer_id}", response_model=MemberOfferToSign)
def member_offer_to_sign(
    offer_id: str, request: Request, session: SessionDep, chain: ChainDep, coop: CoopOrg
) -> MemberOfferToSign:
    """A member's offer and the typed data their own wallet app signs to accept it."""
    return offers.offer_to_sign(session, request.app.state.engine, chain, coop, offer_id)


@router.post("/offers/{offer_id}/acceptance", response_model=MemberOffer)
def relay_member_acceptance(
    offer_id: str,
    body: AcceptanceIn,
    request: Request,
    session: SessionDep,
    chain: ChainDep,
    coop: CoopOrg,
) -> MemberOffer:
    """Relay a member's wallet signature accepting an offer (checked; the lender issues)."""
    engine = request.app.state.engine
    return offers.relay_acceptance(session, engine, chain, coop, offer_id, body)


@router.get("/loans", response_model=Page[MemberLoan])
def list_member_loans(
    request: Request,
    session: SessionDep,
    chain: ChainDep,
    page: PageDep,
    coop: CoopOrg,
    closed: Annotated[bool, Query(description="also repaid, defaulted, cancelled loans")] = False,
) -> Page[MemberLoan]:
    """Your members' open loans: drawn, reserved, left to draw, repaid and what is due."""
    engine = request.app.state.engine if closed else None
    return loans.list_member_loans(session, chain, coop, page, engine)


@router.get("/loans/{escrow}", response_model=MemberLoanDetail)
def get_member_loan(
    escrow: EscrowPath, session: SessionDep, chain: ChainDep, coop: CoopOrg
) -> MemberLoanDetail:
    """One of your members' loans with its payment orders (403 another cooperative's)."""
    return loans.loan_detail(session, chain, coop, escrow)


@router.post("/loans/{escrow}/orders", response_model=OrderPlaced, status_code=201)
def order_payment(
    escrow: EscrowPath,
    body: OrderCreate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    coop: CoopOrg,
) -> OrderPlaced:
    """Pay an approved merchant's invoice from a member's loan, as the member's agent.

    201 with the new order; 200 with the existing order when this invoice was already ordered
    (nothing sent). 409 with the contract's reason when it refuses (merchant not approved for
    the category, over budget, past the draw window, loan not active).
    """
    placed = loans.place_order(session, chain, settings, coop, escrow, body)
    if not placed.created:
        response.status_code = status.HTTP_200_OK
    return placed


@router.post("/loans/{escrow}/orders/{order_id}/cancel", response_model=OrderPublic)
def cancel_order(
    escrow: EscrowPath,
    order_id: OrderIdPath,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    coop: CoopOrg,
) -> OrderPublic:
    """Cancel a reserved order: before the merchant accepted it, or 14 days after (409 else)."""
    return loans.cancel_order(session, chain, settings, coop, escrow, order_id)


@router.post("/orders/upload", response_model=OrderBatch)
def upload_orders(
    file: Annotated[
        UploadFile, File(description="CSV: member,merchant,category,amount_yuan,invoice")
    ],
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    coop: CoopOrg,
) -> OrderBatch:
    """Order a CSV of invoices: each row's outcome (ordered, duplicate, error with the reason).

    `member` is the member number of the members page (or the 0x farmer id); `merchant` the
    merchant's organisation id, exact name or address; the row's member's open loan pays.
    Every row is checked first (the chain's own check included, and against the file's earlier
    rows: an invoice twice, a budget the rows together exceed); then the orders of the rows
    that passed are sent back to back and their receipts read together. Uploading the same
    file again orders nothing twice (the invoice is the key).
    """
    return loans.order_file(session, chain, settings, coop, file.file.read())
