"""A member roll as a CSV file, as a cooperative keeps it in its spreadsheet.

One row per plot: a member with several plots has several rows with the same national id (the
name may be left out after its first row); a member without plots has one row with no land
reference. Columns are named in English or Chinese (`COLUMNS`); a file with columns this reader
does not know is refused whole, so that no personal data is silently dropped or stored where it
does not belong. Each row's mistakes are listed by line, and a member with a faulty row is left
out whole (its other plots too). The rest is registered as a roll (api.cooperatives.roll): each
member checked there as the single registration checks it, refusals listed by the line of the
member's first row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from api.cooperatives.roll import (
    MAX_MEMBER_BATCH,
    MAX_MEMBER_PLOTS,
    MemberAdded,
    MemberIn,
    MemberRoll,
    register_members,
)
from api.core.errors import Invalid
from api.core.models import Organisation
from api.core.settings import ApiSettings
from api.core.types import normalize_national_id
from chain.client import ChainClient
from chain.errors import NotTextError
from chain.text import decode_text
from traceability.models import UINT32_MAX

COLUMNS = {
    "national_id": "national_id", "身份证号": "national_id", "身份证号码": "national_id",
    "name": "name", "姓名": "name",
    "wallet": "wallet", "钱包地址": "wallet",
    "land_reference": "land_reference", "承包合同号": "land_reference",
    "地块编号": "land_reference",
    "area_mu": "area_mu", "面积(亩)": "area_mu", "面积（亩）": "area_mu", "面积": "area_mu",
    "variety": "variety", "品种代码": "variety",
    "label": "label", "地块名称": "label",
    "location": "location", "位置": "location",
}  # fmt: skip
"""Accepted headers and the field each one fills."""
REQUIRED = ("national_id", "name")
MEMBER_FIELDS = ("name", "wallet")
"""Fields of the member, not of a plot: the same on each of its rows, where they are given."""
MAX_ROWS = MAX_MEMBER_BATCH * 4
EXTRA = "_extra"  # a row's mark: it has values in no named column


class RowRefused(BaseModel):
    """A member of the file that was not registered: the line of its row, and why."""

    line: int
    name: str
    reason: str


class RollFileOut(BaseModel):
    """What a roll file registered and what it refused, by line."""

    registered: list[MemberAdded]
    refused: list[RowRefused]


@dataclass
class _Member:
    """One member's rows as read: where it starts, its fields and its plots."""

    line: int
    fields: dict[str, str]
    plots: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None


def area_centi_mu(text: str) -> int:
    """An area in mu with at most two decimals, in 0.01 mu (Invalid otherwise)."""
    try:
        area = Decimal(text.strip()) * 100
        whole = area.is_finite() and area == area.to_integral_value() and 0 < area <= UINT32_MAX
    except ArithmeticError:  # not a number, or one past the decimal context (decimal.Overflow)
        whole = False
    if not whole:
        raise Invalid("面积以亩计，最多两位小数 · area in mu, at most two decimals")
    return int(area)


def _variety(text: str) -> int:
    """A variety code: a whole number (the schema bounds it)."""
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        raise Invalid(f"品种代码是整数 · the variety is a whole-number code, not {text!r}")
    return int(text)


def _rows(content: bytes, name: str) -> list[tuple[int, dict[str, str]]]:
    """(line, fields) of each non-empty row, headers mapped to fields (Invalid for the file)."""
    try:
        text = decode_text(content, name)
    except NotTextError as exc:
        raise Invalid(str(exc)) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        headers = [h.strip() for h in next(reader, [])]
        _check_headers(headers, name)
        fields = [COLUMNS[h] for h in headers]
        for row in reader:
            values = [v.strip() for v in row]
            if any(values) and len(rows) <= MAX_ROWS:
                found = dict(zip(fields, values, strict=False))
                if any(values[len(fields) :]):
                    found[EXTRA] = "values beyond the header's columns"
                rows.append((reader.line_num, found))
    except csv.Error as exc:
        raise Invalid(f"{name} is not a readable CSV file: {exc}") from None
    if not rows or len(rows) > MAX_ROWS:
        raise Invalid(f"a member roll file has 1 to {MAX_ROWS} rows: split a longer roll")
    return rows


def _check_headers(headers: list[str], name: str) -> None:
    """Refuse a file with unknown, repeated or missing columns."""
    unknown = [h for h in headers if h not in COLUMNS]
    fields = [COLUMNS[h] for h in headers if h in COLUMNS]
    twice = sorted({f for f in fields if fields.count(f) > 1})
    missing = [c for c in REQUIRED if c not in fields]
    problems = [f"unknown columns: {', '.join(unknown)}"] if unknown else []
    problems += [f"columns given twice: {', '.join(twice)}"] if twice else []
    problems += [f"missing columns: {', '.join(missing)}"] if missing else []
    if problems:
        raise Invalid(f"{name}: {'; '.join(problems)}. Columns: {', '.join(COLUMNS)}")


def _members(rows: list[tuple[int, dict[str, str]]]) -> list[_Member]:
    """Rows grouped by member (national id as typed, normalised), in the file's order."""
    found: dict[str, _Member] = {}
    for line, fields in rows:
        # A row without a resident id is a member of its own (refused by the id's check).
        key = normalize_national_id(fields.get("national_id", "")) or f"line {line}"
        member = found.get(key)
        if member is None:
            member = found[key] = _Member(line, dict(fields))
        for name in MEMBER_FIELDS:  # given once, on any of the member's rows, or the same again
            value, known = fields.get(name), member.fields.get(name)
            if value and not known:
                member.fields[name] = value
            elif value and value != known:
                member.error = (
                    member.error or f"line {line}: another {name} for the same national id"
                )
        if EXTRA in fields:
            member.error = member.error or f"line {line}: {fields[EXTRA]}"
        if fields.get("land_reference"):
            member.plots.append({**fields, "line": str(line)})
        elif any(fields.get(k) for k in ("area_mu", "label", "location", "variety")):
            member.error = member.error or f"line {line}: plot details without a land reference"
    return list(found.values())


def _member_in(member: _Member) -> MemberIn:
    """The roll entry of one member (Invalid naming the line of what is wrong)."""
    if member.error:
        raise Invalid(member.error)
    if len(member.plots) > MAX_MEMBER_PLOTS:
        raise Invalid(f"line {member.line}: at most {MAX_MEMBER_PLOTS} plots a member")
    plots = []
    for plot in member.plots:
        try:
            area = area_centi_mu(plot.get("area_mu", ""))
            variety = _variety(plot.get("variety") or "0")
        except Invalid as exc:
            raise Invalid(f"line {plot['line']}: {exc.detail}") from None
        plots.append({"land_reference": plot["land_reference"], "area_centi_mu": area,
                      "variety": variety, "label": plot.get("label") or None,
                      "location": plot.get("location") or None})  # fmt: skip
    fields = member.fields
    try:
        return MemberIn(national_id=fields.get("national_id", ""), name=fields.get("name", ""),
                        wallet=fields.get("wallet") or None, plots=plots)  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Invalid(f"line {member.line}: {where}: {first['msg']}") from None


def register_roll_file(
    session: Session,
    chain: ChainClient,
    settings: ApiSettings,
    coop: Organisation,
    filename: str,
    content: bytes,
) -> RollFileOut:
    """Register the members of a roll file; refusals by the line of each member's first row."""
    members = _members(_rows(content, filename or "the uploaded file"))
    if len(members) > MAX_MEMBER_BATCH:
        raise Invalid(f"a member roll file has at most {MAX_MEMBER_BATCH} members: split it")
    refused: list[RowRefused] = []
    entries: list[tuple[_Member, MemberIn]] = []
    for member in members:
        try:
            entries.append((member, _member_in(member)))
        except Invalid as exc:
            name = member.fields.get("name", "")
            refused.append(RowRefused(line=member.line, name=name, reason=exc.detail))
    registered: list[MemberAdded] = []
    if entries:
        roll = MemberRoll(members=[body for _, body in entries])
        out = register_members(session, chain, settings, coop, roll)
        registered = out.registered
        for r in out.refused:
            refused.append(RowRefused(line=entries[r.item][0].line, name=r.name, reason=r.reason))
    refused.sort(key=lambda r: r.line)
    return RollFileOut(registered=registered, refused=refused)
