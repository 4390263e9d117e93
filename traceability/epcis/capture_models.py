"""The capture service's own tables: capture jobs, the events captured (by event hash) and
which local lot stands for each foreign lot URI.

The chain anchors harvests and processing outputs itself (their data hash is derived from
the event hash); shipping, receiving, sale, inspection and recall carry no hash the event
could go in, so `epcis_captured_event` is what says they were captured (and by which
transaction). Ids and addresses are raw bytes like the indexer's.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, LargeBinary, Text
from sqlmodel import Field, SQLModel


class EpcisCaptureJob(SQLModel, table=True):
    """One POST /epcis/capture: who, when, and how it ended (results and errors as JSON)."""

    __tablename__ = "epcis_capture"

    id: str = Field(primary_key=True, max_length=36)
    organisation: bytes = Field(sa_column=Column(LargeBinary, nullable=False, index=True))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    finished_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    success: bool
    events: int
    recorded: int
    already: int
    results_json: str = Field(sa_column=Column(Text, nullable=False))
    errors_json: str = Field(sa_column=Column(Text, nullable=False))


class EpcisCapturedEvent(SQLModel, table=True):
    """An event recorded on chain through capture, keyed by its CBV 2.0 event hash."""

    __tablename__ = "epcis_captured_event"

    event_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    organisation: bytes = Field(sa_column=Column(LargeBinary, nullable=False, index=True))
    capture_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=16)
    event_id: str = Field(max_length=300)  # as the document wrote it
    # The recording transaction and its first TeaTrace log; empty when the record was found
    # on chain already (a harvest or a step recorded before a crash, anchored by its hash).
    tx_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    log_index: int = Field(sa_column=Column(BigInteger, nullable=False))


class EpcisLotMap(SQLModel, table=True):
    """A foreign lot (its URI in the captured document) and the local lot recorded for it."""

    __tablename__ = "epcis_lot_map"

    source_lot: str = Field(primary_key=True, max_length=200)
    local_lot: bytes = Field(sa_column=Column(LargeBinary, nullable=False, index=True))
    organisation: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    event_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
