"""Regulator pages: the risk overview (counts by rule and status, scan now), the alert list
with filters, and an alert with its evidence, the money's path drawn, and the review forms
(session of /login, CSRF on every form). A status change is reversible (reopen) and carries
its reason, so the form itself is the confirmation step.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

import api.core.labels  # noqa: F401  (registers the label filters)
from api.core.deps import SettingsDep
from api.core.errors import Invalid
from api.core.models import Role
from api.core.pages import answer, message_page, page_router, see_other
from api.core.pagination import MAX_OFFSET, PageParams
from api.core.sessions import PageSession, check_csrf, page_session
from api.core.templates import templates
from api.core.types import AddressPath, RowIdPath
from api.regulator import fairness, service
from api.regulator.graph import hops_of, money_graph, wallet_name
from lending.credit.observed import OperatorGroups, groups_from_bytes
from risk.alerts import AlertStatus

router = page_router()
RegulatorPage = Annotated[PageSession, Depends(page_session(Role.REGULATOR))]
CsrfField = Annotated[str, Form(max_length=64)]
PER_PAGE = 50
# What each next status is called on its button (中文, English).
STEP_NAMES: dict[AlertStatus, tuple[str, str]] = {
    AlertStatus.REVIEWED: ("标记为已审阅", "Mark reviewed"),
    AlertStatus.DISMISSED: ("排除", "Dismiss"),
    AlertStatus.CONFIRMED: ("确认风险", "Confirm"),
}
REOPEN = ("重新打开", "Reopen")
# What an alert is about ("loan:7", "farmer:0x..") and the evidence's named amounts and
# figures, as people read them (中文 English); a name not listed shows as it is.
SUBJECTS = {
    "loan": ("贷款", "loan"),
    "farmer": ("茶农", "farmer"),
    "wallet": ("钱包", "wallet"),
    "lot": ("茶批", "lot"),
    "merchant": ("商户", "merchant"),
    "lender": ("贷款机构", "lender"),
    "cooperative": ("合作社", "cooperative"),
}
EVIDENCE_NAMES = {
    "disbursed": ("放款", "disbursed"),
    "returned": ("回流", "returned"),
    "days": ("天数", "days"),
    "hops": ("转账次数", "hops"),
    "circulated": ("循环金额", "circulated"),
    "first": ("首笔", "first"),
    "open_loans": ("未结贷款", "open loans"),
    "lender_disbursed": ("贷款机构放款", "lender disbursed"),
    "merchant_received": ("商户收款", "merchant received"),
    "established_median": ("既往中位数", "established median"),
    "first_window_inflow": ("首期流入", "first-window inflow"),
}


def subject_label(subject: str) -> str:
    """'loan:7' as 贷款 loan #7, 'farmer:0x..' as 茶农 farmer 0x1234…abcd."""
    kind, _, value = subject.partition(":")
    if kind not in SUBJECTS:
        return subject
    zh, en = SUBJECTS[kind]
    shown = f"{value[:8]}…{value[-4:]}" if value.startswith("0x") and len(value) > 14 else value
    return f"{zh} {en} {'#' if value.isdigit() else ''}{shown}".strip()


def evidence_label(name: str) -> str:
    """An evidence figure's name: 回流 returned (the name itself when not listed)."""
    zh, en = EVIDENCE_NAMES.get(name, (name, name))
    return zh if zh == en else f"{zh} {en}"


templates.env.filters["alert_subject"] = subject_label
templates.env.filters["evidence_label"] = evidence_label
DONE = {
    "scan": "扫描完成 Scan finished",
    "status": "状态已更新 Status changed",
}


@router.get("/reg", response_class=HTMLResponse)
def regulator_home(
    request: Request,
    page: RegulatorPage,
    new: Annotated[int | None, Query(ge=0, le=10**9)] = None,
    seen: Annotated[int | None, Query(ge=0, le=10**9)] = None,
) -> HTMLResponse:
    """Alerts by rule and status, the rules, and a button to scan now (风险总览)."""
    engine = request.app.state.engine
    context: dict[str, Any] = {
        "org": page.org,
        "csrf": page.csrf,
        "counts": service.counts(engine),
        "rules": service.rules(),
        "titles": service.rule_titles,
        "statuses": list(AlertStatus),
        "scanned": (new, seen) if new is not None and seen is not None else None,
    }
    return templates.TemplateResponse(request, "reg_home.html", context)


@router.post("/reg/scans", response_class=HTMLResponse)
def regulator_scan(
    request: Request, settings: SettingsDep, page: RegulatorPage, csrf: CsrfField
) -> Response:
    """Run every rule now, then back to the overview with what was found."""
    check_csrf(page, csrf)
    engine = request.app.state.engine

    return answer(
        lambda: service.scan_database(settings.database_url, engine),
        _after_scan,
        partial(message_page, request),
    )


def _after_scan(report: service.ScanReport) -> Response:
    """The overview, saying how many alerts are new and how many were seen again."""
    return see_other(f"/reg?new={report.new}&seen={report.seen_again}")


@router.get("/reg/alerts", response_class=HTMLResponse)
def regulator_alerts(
    request: Request,
    page: RegulatorPage,
    status: Annotated[str, Query(max_length=16)] = "",
    rule: Annotated[str, Query(max_length=64, pattern=r"^[a-z0-9_]*$")] = "",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """Alerts of every organisation, newest first, filtered by status and rule (预警)."""
    engine = request.app.state.engine
    chosen = rule or None
    wanted = _status(status) if status else None
    listed = service.alerts(engine, PageParams(limit=PER_PAGE, offset=offset), wanted, chosen)
    context: dict[str, Any] = {
        "org": page.org,
        "page": listed,
        "rules": service.rules(),
        "statuses": list(AlertStatus),
        "status": status,
        "rule": rule,
    }
    return templates.TemplateResponse(request, "reg_alerts.html", context)


@router.get("/reg/alerts/{alert_id}", response_class=HTMLResponse)
def regulator_alert(
    request: Request,
    alert_id: RowIdPath,
    page: RegulatorPage,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """One alert: why, the evidence, the money's path, the review trail and forms (预警详情)."""
    return _alert_page(request, page, alert_id, notice=DONE.get(done or ""))


def _alert_page(
    request: Request,
    page: PageSession,
    alert_id: int,
    error: str | None = None,
    code: int = 200,
    notice: str | None = None,
    reason: str = "",
) -> HTMLResponse:
    """The alert page, with the error of a refused change if any."""
    engine = request.app.state.engine
    detail = service.alert(engine, alert_id)
    names = {
        "0x" + address.hex(): label.name for address, label in service.wallet_names(engine).items()
    }
    hops = hops_of(detail.evidence)
    known = {h.sender: h.sender_name for h in hops} | {h.recipient: h.recipient_name for h in hops}
    steps = [
        (s.value, *(REOPEN if s == AlertStatus.REVIEWED and _closed(detail) else STEP_NAMES[s]))
        for s in detail.allowed
    ]
    context: dict[str, Any] = {
        "org": page.org,
        "csrf": page.csrf,
        "a": detail.alert,
        "evidence": detail.evidence,
        "hops": hops,
        "names": names,
        "wallet": lambda address, name="": wallet_name(
            address, name or known.get(address, address), names
        ),
        "graph": money_graph(detail.evidence, names),
        "changes": detail.changes,
        "steps": steps,
        "error": error,
        "notice": notice,
        "reason": reason,
    }
    return templates.TemplateResponse(request, "reg_alert.html", context, code)


def _status(value: str) -> AlertStatus:
    """A status named in a form or link (422 naming the statuses otherwise)."""
    try:
        return AlertStatus(value)
    except ValueError:
        names = ", ".join(AlertStatus)
        raise Invalid(f"未知状态 unknown status {value[:16]!r}; statuses are {names}") from None


def _closed(detail: service.AlertDetail) -> bool:
    """Dismissed or confirmed: moving back to reviewed is reopening it."""
    return detail.alert.status in (AlertStatus.DISMISSED, AlertStatus.CONFIRMED)


@router.post("/reg/alerts/{alert_id}/status", response_class=HTMLResponse)
def regulator_change_status(
    request: Request,
    alert_id: RowIdPath,
    page: RegulatorPage,
    csrf: CsrfField,
    status: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Move the alert with the reason typed, then back to it (the page again if refused)."""
    check_csrf(page, csrf)
    engine = request.app.state.engine

    def change() -> service.AlertDetail:
        body = service.StatusChange(status=_status(status), reason=service.reason_text(reason))
        return service.set_status(engine, alert_id, body, page.org)

    def failed(error: str, code: int) -> HTMLResponse:
        return _alert_page(request, page, alert_id, error, code, reason=reason)

    return answer(change, f"/reg/alerts/{alert_id}?done=status", failed)


@router.get("/reg/wallets/{address}", response_class=HTMLResponse)
def regulator_wallet(
    request: Request,
    address: AddressPath,
    page: RegulatorPage,
    settings: SettingsDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """Follow a wallet's money: who is behind it, each transfer in and out and why (资金流向)."""
    flows = service.wallet_flows(settings.database_url, request.app.state.engine, address,
                                 PageParams(limit=PER_PAGE, offset=offset))  # fmt: skip
    context = {"org": page.org, "flows": flows, "short": wallet_name}
    return templates.TemplateResponse(request, "reg_wallet.html", context)


@router.get("/reg/fairness", response_class=HTMLResponse)
def regulator_fairness(
    request: Request, settings: SettingsDep, page: RegulatorPage
) -> HTMLResponse:
    """Approval and default rates per group with intervals, limit ratios, four-fifths (公平性)."""
    return _fairness_page(request, settings.database_url, page)


@router.post("/reg/fairness", response_class=HTMLResponse)
def regulator_fairness_by_groups(
    request: Request,
    settings: SettingsDep,
    page: RegulatorPage,
    groups: Annotated[UploadFile, File()],
    csrf: CsrfField,
) -> Response:
    """The same report also grouped by the attributes of an operator's groups file (CSV)."""
    check_csrf(page, csrf)
    return answer(
        lambda: groups_from_bytes(groups.file.read(), groups.filename or "groups file"),
        lambda found: _fairness_page(request, settings.database_url, page, found,
                                     groups.filename or ""),
        lambda message, status: _fairness_page(request, settings.database_url, page,
                                               error=message, status=status),
    )  # fmt: skip


def _fairness_page(
    request: Request, database_url: str, page: PageSession,
    groups: OperatorGroups | None = None, groups_name: str = "", error: str | None = None,
    status: int = 200,
) -> HTMLResponse:  # fmt: skip
    """The fairness page: by cooperative, and by the operator's attributes when given."""
    engine = request.app.state.engine
    found = fairness.report(engine, database_url, groups)
    context: dict[str, Any] = {
        "org": page.org,
        "report": found,
        "verdict": fairness.verdict_label(found.verdict),
        "charts": fairness.charts(found, fairness.group_names(engine)),
        "csrf": page.csrf,
        "groups_name": groups_name,
        "error": error,
    }
    return templates.TemplateResponse(request, "reg_fairness.html", context, status_code=status)
