"""Validation of records before anything is sent."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from traceability.ids import harvest_data_hash
from traceability.models import (
    FarmerRegistration,
    Grade,
    HarvestRecord,
    PlotRegistration,
    QualityAttestation,
)

F = "0x" + "11" * 32
P = "0x" + "22" * 32


def record(**kw) -> HarvestRecord:
    base = {"farmer": F, "plot": P, "grams": 5_000, "grade": 2, "picked_at": 1_700_000_000}
    return HarvestRecord.model_validate({**base, **kw})


def test_a_valid_record_and_its_idempotency_key():
    r = record(record_ref="R-7")
    assert r.farmer == bytes.fromhex("11" * 32)
    assert r.grade is Grade.FIRST
    assert r.key == harvest_data_hash(r.farmer, r.plot, 5_000, 2, 1_700_000_000, "R-7")
    assert r.as_tuple() == (r.farmer, r.plot, 5_000, 2, 1_700_000_000, r.key)
    given = "0x" + "33" * 32
    assert record(data_hash=given).key == bytes.fromhex("33" * 32)


@pytest.mark.parametrize("grade", [1, "1", "special", "SPECIAL", "特级", Grade.SPECIAL])
def test_grades_by_code_name_or_label(grade):
    assert record(grade=grade).grade is Grade.SPECIAL


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("grams", 0),
        ("grams", -5),
        ("grams", 2**64),
        ("grade", 0),
        ("grade", 6),
        ("grade", "best"),
        ("grade", True),
        ("farmer", "0x1234"),
        ("plot", "22" * 32),
        pytest.param("picked_at", int(time.time()) + 3600, id="picked_at-an-hour-ahead"),
        ("picked_at", "2999-01-01T00:00:00"),
        ("picked_at", 946_684_799),
        ("picked_at", "yesterday"),
        ("unexpected", "x"),
    ],
)
def test_invalid_fields_are_refused(field, value):
    with pytest.raises(ValidationError) as info:
        record(**{field: value})
    assert info.value.errors()[0]["loc"][0] == field


def test_times_as_iso_or_unix_seconds():
    moment = datetime(2026, 4, 2, 7, 30, tzinfo=UTC)
    assert record(picked_at="2026-04-02T07:30:00+00:00").picked_at == int(moment.timestamp())
    assert record(picked_at="2026-04-02T07:30:00").picked_at == int(
        moment.timestamp()
    )  # naive = UTC
    assert record(picked_at=str(int(moment.timestamp()))).picked_at == int(moment.timestamp())
    assert record(picked_at=moment).picked_at == int(moment.timestamp())


def test_records_are_immutable():
    r = record()
    with pytest.raises(ValidationError):
        r.grams = 1  # type: ignore[misc]


def test_other_models():
    reg = FarmerRegistration(farmer=F, wallet="0x70997970c51812dc3a010c7d01b50e0d17dc79c8")
    assert reg.wallet == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert FarmerRegistration(farmer=F).as_tuple()[1] == "0x" + "00" * 20
    with pytest.raises(ValidationError):
        FarmerRegistration(farmer=F, wallet="0x1234")
    with pytest.raises(ValidationError):
        PlotRegistration(plot=P, farmer=F, area_centi_mu=0)
    with pytest.raises(ValidationError):
        PlotRegistration(plot=P, farmer=F, area_centi_mu=10, variety=70_000)
    att = QualityAttestation(lot=P, grade="一级", passed=True)
    assert att.as_tuple() == (bytes.fromhex("22" * 32), 2, True, b"\0" * 32)
    assert Grade.FIRST.label == "一级"
