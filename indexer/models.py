"""Database schema of the indexer: engine state, raw events and the derived (projected) tables.

Ids, hashes and addresses are raw bytes (BLOB / bytea: half the size of hex and no case
questions); masses are integer grams, money integer fen, areas integer 0.01 mu. Every derived
row carries the `block_number` of the event that made it, so a reorg rolls a table back with one
`DELETE ... WHERE block_number > ancestor`, and nothing is ever updated in place (except the
small `coop_season` aggregate, which is recomputed, never incremented).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, MetaData, PrimaryKeyConstraint
from sqlmodel import Field, SQLModel

# One MetaData for the indexer only, so Alembic and `create_all` never see other packages'.
metadata = MetaData()


class IndexerTable(SQLModel):
    """Base of the indexer's tables (own metadata)."""

    metadata = metadata


def _bytes(primary_key: bool = False, nullable: bool = False, index: bool = False) -> object:
    """A binary column."""
    return Field(
        sa_column=Column(LargeBinary, primary_key=primary_key, nullable=nullable, index=index)
    )


def _big(primary_key: bool = False, index: bool = False) -> object:
    """A 64-bit integer column."""
    return Field(sa_column=Column(BigInteger, primary_key=primary_key, nullable=False, index=index))


# ------------------------------------------------------------------------------- engine state


class Checkpoint(IndexerTable, table=True):
    """The one row saying which chain and up to which block the database is complete."""

    __tablename__ = "indexer_checkpoint"

    id: int = Field(default=1, primary_key=True)
    chain_id: int = _big()
    genesis_hash: bytes = _bytes()
    start_block: int = _big()
    block_number: int = _big()  # last fully indexed block (start_block - 1 before the first)
    block_hash: bytes = _bytes()


class WindowBlock(IndexerTable, table=True):
    """Hashes of the most recent (unfinalized) blocks, for parent-hash checks and rollbacks."""

    __tablename__ = "indexer_block"

    number: int = _big(primary_key=True)
    hash: bytes = _bytes()
    parent_hash: bytes = _bytes()
    timestamp: int = _big()


class IndexedContract(IndexerTable, table=True):
    """A contract whose logs are read, with the artifact that decodes them."""

    __tablename__ = "indexer_contract"

    address: bytes = _bytes(primary_key=True)
    name: str
    contract: str
    from_block: int = _big()
    parent: bytes | None = _bytes(nullable=True)  # the factory that announced it (clones)


class RawEvent(IndexerTable, table=True):
    """A log exactly as the chain gave it: the source every derived table is rebuilt from."""

    __tablename__ = "raw_event"
    # A log is identified by (block_hash, log_index). The key leads with block_number, which
    # the hash determines, so it admits exactly the same rows, while a backfill appends to
    # its B-tree instead of writing all over it (hashes are random), and block-order reads and
    # rollbacks by block number use it too (migration 0004).
    __table_args__ = (
        PrimaryKeyConstraint("block_number", "block_hash", "log_index"),
        # the archive's reads (indexer/archive.py): an event at some contracts, or by its
        # first indexed argument (migration 0016)
        Index("ix_raw_event_topic0", "topic0", "address"),
        Index("ix_raw_event_topic1", "topic1"),
    )

    block_hash: bytes = _bytes(primary_key=True)
    log_index: int = Field(primary_key=True)
    block_number: int = _big(primary_key=True)
    block_timestamp: int = _big()
    tx_hash: bytes = _bytes()
    tx_index: int
    address: bytes = _bytes()
    topic0: bytes | None = _bytes(nullable=True)
    topic1: bytes | None = _bytes(nullable=True)
    topic2: bytes | None = _bytes(nullable=True)
    topic3: bytes | None = _bytes(nullable=True)
    data: bytes = _bytes()
    event: str | None = None


# -------------------------------------------------------------------------- derived: farmers


class Farmer(IndexerTable, table=True):
    """FarmerRegistered: a pseudonymous farmer joined a cooperative."""

    __tablename__ = "farmer"

    farmer: bytes = _bytes(primary_key=True)
    cooperative: bytes = _bytes(index=True)
    wallet: bytes | None = _bytes(nullable=True)
    block_number: int = _big(index=True)
    log_index: int
    block_timestamp: int = _big()


class FarmerChange(IndexerTable, table=True):
    """FarmerWalletChanged / FarmerDeactivated / FarmerReactivated."""

    __tablename__ = "farmer_change"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    farmer: bytes = _bytes(index=True)
    kind: str
    wallet: bytes | None = _bytes(nullable=True)


class Plot(IndexerTable, table=True):
    """PlotRegistered."""

    __tablename__ = "plot"

    plot: bytes = _bytes(primary_key=True)
    farmer: bytes = _bytes(index=True)
    cooperative: bytes = _bytes()
    area_centi_mu: int = _big()
    variety: int
    location_hash: bytes = _bytes()
    block_number: int = _big(index=True)
    log_index: int


# ---------------------------------------------------------------------- derived: lots, lineage


class Harvest(IndexerTable, table=True):
    """HarvestRecorded: a fresh-leaf lot, with its season and the farmer's cooperative."""

    __tablename__ = "harvest"
    __table_args__ = (
        Index("ix_harvest_farmer_season", "farmer", "season"),
        Index("ix_harvest_cooperative_block", "cooperative", "block_number"),  # lot lists
    )

    lot: bytes = _bytes(primary_key=True)
    farmer: bytes = _bytes()
    plot: bytes = _bytes()
    cooperative: bytes = _bytes()
    grams: int = _big()
    grade: int
    picked_at: int = _big()
    season: str
    data_hash: bytes = _bytes()
    block_number: int = _big(index=True)
    log_index: int
    block_timestamp: int = _big()


class LotConsumed(IndexerTable, table=True):
    """LotConsumed: an input of a processing step."""

    __tablename__ = "lot_consumed"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    lot: bytes = _bytes(index=True)
    process_id: bytes = _bytes(index=True)
    processor: bytes = _bytes()
    grams: int = _big()


class LotProduced(IndexerTable, table=True):
    """LotProduced: a made-tea output of a processing step."""

    __tablename__ = "lot_produced"

    lot: bytes = _bytes(primary_key=True)
    process_id: bytes = _bytes(index=True)
    processor: bytes = _bytes()
    grams: int = _big()
    data_hash: bytes = _bytes()
    upstream_sold: bool  # an input (or its upstream) had been sold before this step
    block_number: int = _big(index=True)
    log_index: int


class LotSource(IndexerTable, table=True):
    """Lineage closure: fresh-leaf grams of `harvest_lot` contained in made-tea `lot`.

    Computed when the lot is produced, by splitting each input's sources over the step's outputs
    pro rata to output grams (largest remainder, so grams are conserved exactly).
    """

    __tablename__ = "lot_source"

    lot: bytes = _bytes(primary_key=True)
    harvest_lot: bytes = _bytes(primary_key=True)
    farmer: bytes = _bytes()
    cooperative: bytes = _bytes()
    season: str
    grams: int = _big()
    block_number: int = _big(index=True)


class HarvestYield(IndexerTable, table=True):
    """Made tea attributed to a harvest lot by the step that consumed it (its fresh-leaf share)."""

    __tablename__ = "harvest_yield"
    __table_args__ = (Index("ix_harvest_yield_farmer_season", "farmer", "season"),)

    harvest_lot: bytes = _bytes(primary_key=True)
    farmer: bytes = _bytes()
    season: str
    process_id: bytes = _bytes()
    made_grams: int = _big()
    block_number: int = _big(index=True)


class LotMovement(IndexerTable, table=True):
    """LotShipped / LotReceived."""

    __tablename__ = "lot_movement"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    lot: bytes = _bytes(index=True)
    kind: str
    party_from: bytes | None = _bytes(nullable=True)
    party_to: bytes = _bytes()


class Sale(IndexerTable, table=True):
    """LotSold."""

    __tablename__ = "sale"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    lot: bytes = _bytes(index=True)
    seller: bytes = _bytes()
    buyer: bytes = _bytes()
    price_fen: int = _big()
    attributed: bool  # the first sale along the lineage: its price is farmers' income
    block_timestamp: int = _big()


class SaleShare(IndexerTable, table=True):
    """A sale's price split over the harvest lots in the sold lot, pro rata to fresh-leaf grams."""

    __tablename__ = "sale_share"
    __table_args__ = (
        Index("ix_sale_share_farmer_season", "farmer", "season"),
        Index("ix_sale_share_coop_season", "cooperative", "season"),
    )

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    harvest_lot: bytes = _bytes(primary_key=True)
    farmer: bytes = _bytes()
    cooperative: bytes = _bytes()
    season: str
    fresh_grams: int = _big()
    income_fen: int = _big()


class Quality(IndexerTable, table=True):
    """QualityAttested."""

    __tablename__ = "quality"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    lot: bytes = _bytes(index=True)
    inspector: bytes = _bytes()
    grade: int
    passed: bool
    certificate_hash: bytes = _bytes()


class Recall(IndexerTable, table=True):
    """LotRecalled."""

    __tablename__ = "recall"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    lot: bytes = _bytes(index=True)
    inspector: bytes = _bytes()
    reason_hash: bytes = _bytes()


class FarmerIncident(IndexerTable, table=True):
    """A failed quality attestation or a recall of a lot that contains this farmer's leaf."""

    __tablename__ = "farmer_incident"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    farmer: bytes = _bytes(primary_key=True, index=True)
    season: str = Field(primary_key=True)
    kind: str
    lot: bytes = _bytes()


class Consent(IndexerTable, table=True):
    """ConsentGranted / ConsentRevoked."""

    __tablename__ = "consent"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    farmer: bytes = _bytes(index=True)
    lender: bytes = _bytes()
    wallet: bytes = _bytes()
    expires_at: int = _big()
    granted: bool


# ------------------------------------------------------------------------- derived: lending


class Loan(IndexerTable, table=True):
    """LoanIssued: a loan to a farmer, held in its own escrow clone."""

    __tablename__ = "loan"

    loan_id: int = _big(primary_key=True)
    escrow: bytes = _bytes(index=True)
    farmer: bytes = _bytes(index=True)
    lender: bytes = _bytes()
    borrower: bytes = _bytes()
    agent: bytes = _bytes()
    principal_fen: int = _big()
    block_number: int = _big(index=True)
    log_index: int
    block_timestamp: int = _big()


class IndexedLoanTerms(IndexerTable, table=True):
    """LoanTermsRecorded: due dates and amounts a repayment record is judged against."""

    __tablename__ = "loan_terms"

    loan_id: int = _big(primary_key=True)
    total_due_fen: int = _big()
    due_date: int = _big()
    draw_deadline: int = _big()
    grace_days: int
    default_days: int
    mode: int
    schedule_hash: bytes = _bytes()
    disclosure_hash: bytes = _bytes()
    block_number: int = _big(index=True)


class LoanEvent(IndexerTable, table=True):
    """Everything else an escrow reports: funding, orders, disbursements, repayments, status."""

    __tablename__ = "loan_event"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    loan_id: int = _big(index=True)
    kind: str
    amount_fen: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    party: bytes | None = _bytes(nullable=True)
    category: bytes | None = _bytes(nullable=True)
    order_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    status: int | None = None
    outstanding_fen: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    reference: bytes | None = _bytes(nullable=True)
    block_timestamp: int = _big()


class FarmerSettlement(IndexerTable, table=True):
    """FarmerShareSettled: a farmer's share of a settled sale and where it went."""

    __tablename__ = "farmer_settlement"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    sale_id: int = _big()
    farmer: bytes = _bytes(index=True)
    escrow: bytes = _bytes()
    share_fen: int = _big()
    repaid_fen: int = _big()
    paid_out_fen: int = _big()
    held_fen: int = _big()


class TokenTransfer(IndexerTable, table=True):
    """Transfer of the payment token (eCNY): money followed wallet to wallet; mint from 0x0."""

    __tablename__ = "token_transfer"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    token: bytes = _bytes()
    sender: bytes = _bytes(index=True)
    recipient: bytes = _bytes(index=True)
    amount_fen: int = _big()
    tx_hash: bytes = _bytes(index=True)
    block_timestamp: int = _big()


class MerchantApproval(IndexerTable, table=True):
    """MerchantApproved / MerchantRevoked: when a merchant may be paid for a category."""

    __tablename__ = "merchant_approval"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    merchant: bytes = _bytes(index=True)
    category: bytes = _bytes()
    registrar: bytes = _bytes()
    approved: bool
    expires_at: int = _big()  # 0 when revoked
    block_timestamp: int = _big()


class CoopSeason(IndexerTable, table=True):
    """Per cooperative and season: what its sold leaf earned (for "price vs. cooperative")."""

    __tablename__ = "coop_season"

    cooperative: bytes = _bytes(primary_key=True)
    season: str = Field(primary_key=True)
    fresh_grams: int = _big()
    income_fen: int = _big()


class Anomaly(IndexerTable, table=True):
    """An event stored raw but not projected (e.g. a value beyond 64 bits), with the reason."""

    __tablename__ = "anomaly"

    block_number: int = _big(primary_key=True)
    log_index: int = Field(primary_key=True)
    event: str
    reason: str


# Tables rolled back by block number and emptied by a rebuild (order: children first).
DERIVED_TABLES: tuple[type[IndexerTable], ...] = (
    Farmer,
    FarmerChange,
    Plot,
    Harvest,
    LotConsumed,
    LotProduced,
    LotSource,
    HarvestYield,
    LotMovement,
    Sale,
    SaleShare,
    Quality,
    Recall,
    FarmerIncident,
    Consent,
    Loan,
    IndexedLoanTerms,
    LoanEvent,
    FarmerSettlement,
    TokenTransfer,
    MerchantApproval,
    Anomaly,
)
AGGREGATE_TABLES: tuple[type[IndexerTable], ...] = (CoopSeason,)
