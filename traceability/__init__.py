"""Traceability: farmers, plots, harvests, processing, shipment, sale, quality, recall, consent.

`RecordingService` sends an organisation's records to TeaTrace, `LineageReader` answers
lineage questions from chain events, `ConsentService` manages farmers' consents for lenders.
"""

from traceability.consent import ConsentService
from traceability.errors import ChainRejectedError, TraceabilityError
from traceability.ids import farmer_id, lot_id, plot_id
from traceability.lineage import LineageReader
from traceability.service import RecordingService

__all__ = [
    "ChainRejectedError",
    "ConsentService",
    "LineageReader",
    "RecordingService",
    "TraceabilityError",
    "farmer_id",
    "lot_id",
    "plot_id",
]
