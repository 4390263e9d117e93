"""The regulator: risk alerts across every organisation, their review, scans and the rules.

Regulator organisations only (403 for every other role); the alerts are the risk monitor's
(risk/), read and changed in the service's database.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile, status
from pydantic import BaseModel, Field

from api.core.deps import SettingsDep, require_role
from api.core.models import Organisation, Role
from api.core.pagination import Page, PageDep
from api.core.types import AddressPath, RowIdPath
from api.regulator import fairness, service
from api.regulator.service import (
    AlertCounts,
    AlertDetail,
    AlertView,
    RuleView,
    ScanReport,
    StatusChange,
    WalletFlows,
)
from lending.credit.observed import ObservedFairnessReport, groups_from_bytes
from risk.alerts import AlertStatus

router = APIRouter(prefix="/regulator", tags=["regulator"])

RegulatorOrg = Annotated[Organisation, Depends(require_role(Role.REGULATOR))]
RuleName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]


class ScanRequest(BaseModel):
    """Which rules to run (all when left out)."""

    rules: list[RuleName] | None = Field(default=None, max_length=50)


@router.get("/alerts", response_model=Page[AlertView])
def list_alerts(
    request: Request,
    page: PageDep,
    org: RegulatorOrg,
    status: Annotated[AlertStatus | None, Query(description="only alerts in this status")] = None,
    rule: Annotated[
        str | None,
        Query(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$", description="a rule's name"),
    ] = None,
) -> Page[AlertView]:
    """Alerts of every organisation, newest observation first, by status and rule."""
    return service.alerts(request.app.state.engine, page, status, rule)


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
def get_alert(request: Request, alert_id: RowIdPath, org: RegulatorOrg) -> AlertDetail:
    """One alert: its explanation, evidence, review trail and the statuses it may move to."""
    return service.alert(request.app.state.engine, alert_id)


@router.post("/alerts/{alert_id}/status", response_model=AlertDetail)
def change_status(
    request: Request, alert_id: RowIdPath, body: StatusChange, org: RegulatorOrg
) -> AlertDetail:
    """Move an alert along the review (open, reviewed, confirmed or dismissed) with a reason.

    open -> reviewed -> confirmed | dismissed; a confirmed or dismissed alert may be reopened
    to reviewed. A step the workflow does not allow is 409, a blank reason 422.
    """
    return service.set_status(request.app.state.engine, alert_id, body, org)


@router.post("/scans", response_model=ScanReport, status_code=status.HTTP_200_OK)
def run_scan(
    request: Request, settings: SettingsDep, org: RegulatorOrg, body: ScanRequest | None = None
) -> ScanReport:
    """Run the rules over the indexed chain now: new alerts, ones seen again, per rule."""
    names = body.rules if body is not None else None
    return service.scan_database(settings.database_url, request.app.state.engine, names)


@router.get("/wallets/{address}/flows", response_model=WalletFlows)
def wallet_flows(
    request: Request, address: AddressPath, page: PageDep, settings: SettingsDep,
    org: RegulatorOrg,
) -> WalletFlows:  # fmt: skip
    """Follow a wallet's money: who is behind it and each transfer in and out, newest first.

    Each transfer names the other side and why it moved: the escrow, settlement or mint event of
    its transaction that explains it, else a direct transfer."""
    return service.wallet_flows(settings.database_url, request.app.state.engine, address, page)


@router.get("/counts", response_model=AlertCounts)
def alert_counts(request: Request, org: RegulatorOrg) -> AlertCounts:
    """Alerts by rule and status."""
    return service.counts(request.app.state.engine)


@router.get("/rules", response_model=list[RuleView])
def rules(org: RegulatorOrg) -> list[RuleView]:
    """Every rule the monitor runs: name, titles (中文, English) and what it looks for."""
    return service.rules()


@router.get("/fairness", response_model=ObservedFairnessReport)
def fairness_report(
    request: Request, settings: SettingsDep, org: RegulatorOrg
) -> ObservedFairnessReport:
    """Fairness of the stored credit decisions: approval, limit and default rates by group."""
    return fairness.report(request.app.state.engine, settings.database_url)


@router.post("/fairness", response_model=ObservedFairnessReport)
def fairness_report_by_groups(
    request: Request,
    settings: SettingsDep,
    org: RegulatorOrg,
    groups: Annotated[UploadFile, File(description="CSV: farmer_id,<attribute>,... (UTF-8/GBK)")],
) -> ObservedFairnessReport:
    """The fairness report also grouped by an operator's attributes, uploaded as a CSV file.

    The file is read for this report only and not kept: farmer ids and the operator's own
    attributes (gender, village...), intersections included."""
    found = groups_from_bytes(groups.file.read(), groups.filename or "groups file")
    return fairness.report(request.app.state.engine, settings.database_url, found)
