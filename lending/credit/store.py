"""Insert-only storage of credit decisions and of the profile access log (SQLModel).

Every decision is stored whole (canonical JSON of the DecisionRecord) with the sha256 of that
JSON alongside, plus indexed columns for queries. Rows are never updated or deleted: the API
has no such method, the ORM refuses flushes that would, and `create_tables` adds database
triggers (SQLite and PostgreSQL) that abort any UPDATE or DELETE. Reading a decision re-hashes
its JSON, so a row altered behind the database's back is reported, not trusted.

The tables are lending.credit.models. The service and the CLIs get both tables and their
triggers from the project's one Alembic history (migrations/, revision 0003, which froze
`trigger_ddl`); `create_tables` stays for stand-alone stores of tests and benchmarks that hold
nothing else.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel, col, func, select

from lending.credit.access import AccessOutcome, ProfileAccess
from lending.credit.decision import DecisionRecord
from lending.credit.features import canonical_json, sha256_hex
from lending.credit.models import DECISION_ID_LENGTH, CreditDecisionRow, ProfileAccessRow
from lending.errors import DecisionNotFoundError, DecisionStoreError, RecordTamperedError

INSERT_ONLY_TABLES = ("credit_decision", "profile_access_log")
_CHUNK = 500


def trigger_ddl(dialect: str) -> list[str]:
    """DDL of the triggers that make both tables insert-only in `dialect`."""
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {t}_no_{op} BEFORE {op.upper()} ON {t} "
            f"BEGIN SELECT RAISE(ABORT, '{t} is insert-only'); END"
            for t in INSERT_ONLY_TABLES
            for op in ("update", "delete")
        ]
    if dialect == "postgresql":
        ddl = [
            "CREATE OR REPLACE FUNCTION tealedger_insert_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '% is insert-only', TG_TABLE_NAME; "
            "END $$"
        ]
        for t in INSERT_ONLY_TABLES:
            ddl += [
                f"DROP TRIGGER IF EXISTS {t}_insert_only ON {t}",
                f"CREATE TRIGGER {t}_insert_only BEFORE UPDATE OR DELETE ON {t} "
                "FOR EACH ROW EXECUTE FUNCTION tealedger_insert_only()",
                f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}",
                f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                "FOR EACH STATEMENT EXECUTE FUNCTION tealedger_insert_only()",
            ]
        return ddl
    raise DecisionStoreError(
        f"no insert-only triggers for database dialect {dialect!r}; use SQLite or PostgreSQL"
    )


def create_tables(engine: Engine) -> None:
    """Create the two tables and their triggers in a stand-alone store (no migrations)."""
    tables = [CreditDecisionRow.__table__, ProfileAccessRow.__table__]
    SQLModel.metadata.create_all(engine, tables=tables)  # type: ignore[arg-type]
    with engine.begin() as conn:
        for statement in trigger_ddl(engine.dialect.name):
            conn.execute(text(statement))


class CreditStore:
    """Insert and read decisions and access-log entries; nothing is ever changed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def insert_decision(self, record: DecisionRecord) -> str:
        """Store a decision record; returns its decision id."""
        body = canonical_json(record.model_dump(mode="json"))
        d = record.decision
        row = CreditDecisionRow(
            decision_id=record.decision_id,
            farmer_id=d.farmer_id,
            lender=record.lender,
            decided_at=_utc(record.decided_at),
            contract_date=d.contract_date,
            profile_block_number=d.profile_block_number,
            profile_block_hash=d.profile_block_hash,
            model_version=d.model_version,
            policy_hash=d.policy_hash,
            score=d.score,
            band=d.band,
            outcome=d.outcome.value,
            limit_fen=d.limit_fen,
            offered_rate_bps=d.pricing.offered_rate_bps if d.pricing else None,
            cap_rule=d.pricing.cap_rule if d.pricing else None,
            cap_action=d.pricing.cap_action.value if d.pricing else None,
            reason_codes=",".join(r.code for r in d.reasons),
            record_json=body,
            content_hash=sha256_hex(body),
        )
        with Session(self.engine) as session:
            session.add(row)
            session.commit()
        return record.decision_id

    def get_decision(self, decision_id: str) -> DecisionRecord:
        """The stored record (by id or a unique prefix of 8+ characters), hash verified."""
        with Session(self.engine) as session:
            rows = session.exec(_by_id(decision_id)).all()
        if len(rows) != 1:
            what = "matches several decisions" if rows else "matches no stored decision"
            raise DecisionNotFoundError(
                f"decision id {decision_id!r} {what}; give the full 32-character id"
            )
        return _verified(rows[0])

    def decisions_for(self, farmer_id: str) -> list[DecisionRecord]:
        """Every decision about a farmer, oldest first."""
        stmt = (
            select(CreditDecisionRow)
            .where(CreditDecisionRow.farmer_id == farmer_id.lower())
            .order_by(col(CreditDecisionRow.id))
        )
        with Session(self.engine) as session:
            return [_verified(r) for r in session.exec(stmt).all()]

    def decision_count(self) -> int:
        """How many decisions are stored."""
        with Session(self.engine) as session:
            return session.exec(select(func.count()).select_from(CreditDecisionRow)).one()

    def latest_decisions(self) -> list[DecisionRecord]:
        """The latest decision (by decided_at, then order stored) of every (farmer, lender)
        pair, hash verified, oldest first."""
        keys = select(
            CreditDecisionRow.id, CreditDecisionRow.farmer_id, CreditDecisionRow.lender,
            CreditDecisionRow.decided_at,
        )  # fmt: skip
        latest: dict[tuple[str, str], tuple[datetime, int]] = {}
        with Session(self.engine) as session:
            for row_id, farmer, lender, at in session.exec(keys).all():
                mark = (_utc(at), row_id or 0)
                if latest.get((farmer, lender), mark) <= mark:
                    latest[(farmer, lender)] = mark
            ids = sorted(row_id for _, row_id in latest.values())
            rows: list[CreditDecisionRow] = []
            # Bounded IN lists: SQLite caps the bound values of one statement.
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                rows += session.exec(
                    select(CreditDecisionRow).where(col(CreditDecisionRow.id).in_(chunk))
                ).all()
        rows.sort(key=lambda r: (_utc(r.decided_at), r.id or 0))
        return [_verified(r) for r in rows]

    def record_access(self, entry: ProfileAccess) -> None:
        """Append one profile access entry (its time normalized to UTC before hashing)."""
        entry = entry.model_copy(update={"at": _utc(entry.at)})
        body = canonical_json(entry.model_dump(mode="json"))
        row = ProfileAccessRow(
            farmer_id=entry.farmer_id,
            lender=entry.lender,
            purpose=entry.purpose,
            outcome=entry.outcome.value,
            at=entry.at,
            decision_id=entry.decision_id,
            block_number=entry.block_number,
            block_hash=entry.block_hash,
            content_hash=sha256_hex(body),
        )
        # One Core INSERT: no ORM session and unit of work around the one row of every read.
        table = ProfileAccessRow.__table__  # type: ignore[attr-defined]
        values = {c.name: getattr(row, c.name) for c in table.columns if c.name != "id"}
        with self.engine.begin() as conn:
            conn.execute(table.insert(), values)

    def access_log(self, farmer_id: str | None = None) -> list[ProfileAccess]:
        """Access entries (of one farmer, or all), oldest first."""
        stmt = select(ProfileAccessRow).order_by(col(ProfileAccessRow.id))
        if farmer_id is not None:
            stmt = stmt.where(ProfileAccessRow.farmer_id == farmer_id.lower())
        with Session(self.engine) as session:
            return [_access(r) for r in session.exec(stmt).all()]


def _by_id(decision_id: str) -> object:
    """Query for an exact id or, from 8 characters, an id prefix."""
    key = decision_id.strip().lower()
    if len(key) < 8 or not key.isalnum():
        raise DecisionNotFoundError(f"decision id {decision_id!r} is too short or malformed")
    if len(key) == DECISION_ID_LENGTH:
        # SQLite's LIKE ignores case, so a prefix query cannot use the unique index and reads
        # every decision: at 4,000 decisions that was a third of issuing a loan.
        return select(CreditDecisionRow).where(CreditDecisionRow.decision_id == key)
    return select(CreditDecisionRow).where(col(CreditDecisionRow.decision_id).startswith(key))


def _verified(row: CreditDecisionRow) -> DecisionRecord:
    """Parse a row after checking its JSON against the stored hash and columns."""
    if sha256_hex(row.record_json) != row.content_hash:
        raise RecordTamperedError(
            f"decision {row.decision_id}: stored JSON does not match its content hash "
            f"{row.content_hash[:12]}..; the row was altered outside tealedger: restore it "
            "from backup and investigate"
        )
    record = DecisionRecord.model_validate(json.loads(row.record_json))
    d = record.decision
    columns = (row.decision_id, row.farmer_id, row.score, row.outcome, row.limit_fen)
    if columns != (record.decision_id, d.farmer_id, d.score, d.outcome.value, d.limit_fen):
        raise RecordTamperedError(
            f"decision {row.decision_id}: indexed columns disagree with the hashed record"
        )
    return record


def _access(row: ProfileAccessRow) -> ProfileAccess:
    """A stored access entry as the API model, hash verified."""
    entry = ProfileAccess(
        farmer_id=row.farmer_id,
        lender=row.lender,
        purpose=row.purpose,
        outcome=AccessOutcome(row.outcome),
        at=_utc(row.at),
        decision_id=row.decision_id,
        block_number=row.block_number,
        block_hash=row.block_hash,
    )
    if sha256_hex(canonical_json(entry.model_dump(mode="json"))) != row.content_hash:
        raise RecordTamperedError(
            f"profile access entry {row.id} does not match its content hash; it was altered "
            "outside tealedger"
        )
    return entry


def _utc(moment: datetime) -> datetime:
    """An aware UTC datetime (naive values are taken to be UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def store_for_url(url: str, *, create: bool = False) -> CreditStore:
    """A store on a database URL (e.g. the service's), migrated to the newest schema if asked."""
    from indexer.db import make_engine, migrate

    engine = make_engine(url)
    if create:
        migrate(engine)
    return CreditStore(engine)
