"""Every route and page of the service, as the markdown tables of docs/api.md.

Built from the app itself (`api.main.create_app`, on a throwaway SQLite file; no chain), so the
catalogue cannot drift from the code: tests/api/test_api_catalogue.py fails when docs/api.md's
block differs from what this prints. One table per audience package (`api/<audience>/`, from
each endpoint's module); the role comes from the route's role check (`require_role`,
`page_session`); the line from the endpoint's docstring, whose first line must be a whole
sentence and, for an HTML page, name the page in Chinese in parentheses.

    python scripts/api_catalogue.py           # print the block
    python scripts/api_catalogue.py --write   # rewrite it in docs/api.md
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "api.md"
BEGIN = "<!-- routes:begin -->"
END = "<!-- routes:end -->"
REGENERATE = "python scripts/api_catalogue.py --write"

# Audience packages in the order of the catalogue, with their headings.
AUDIENCES = {
    "admin": "Admin (`api/admin`)",
    "cooperatives": "Cooperatives (`api/cooperatives`)",
    "supply_chain": "Processors and distributors, inspectors, lot settlement (`api/supply_chain`)",
    "farmers": "Farmers (`api/farmers`)",
    "lenders": "Lenders (`api/lenders`)",
    "merchants": "Merchants (`api/merchants`)",
    "regulator": "Regulator: the risk monitor's alerts and their review (`api/regulator`)",
    "public": "Public (`api/public`)",
    "epcis": "EPCIS 2.0: trace documents and event queries (`api/epcis`)",
    "core": "Log in and out, every organisation (`api/core/sessions.py`)",
    "ops": "Operations: health and metrics (`api/ops`)",
}
CJK = re.compile(r"[\u4e00-\u9fff]")

if TYPE_CHECKING:
    from fastapi import FastAPI


@dataclass(frozen=True)
class Row:
    """One route of the catalogue."""

    audience: str
    methods: str
    path: str
    who: str
    kind: str
    what: str


def build_app(data: Path) -> FastAPI:
    """The real app on a throwaway database in `data` (migrated; no chain is touched)."""
    from api.core.settings import ApiSettings
    from api.main import create_app

    settings = ApiSettings(
        environment="test", database_url=f"sqlite:///{data / 'catalogue.db'}", data_dir=data
    )
    return create_app(settings)


def rows(app: FastAPI) -> list[Row]:
    """Every route of `app` (FastAPI's own docs routes aside), audience by audience."""
    from fastapi.routing import APIRoute, iter_route_contexts

    found: list[Row] = []
    problems: list[str] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue  # /openapi.json, /docs, /redoc
        methods = ", ".join(sorted(context.methods))
        name = f"{methods} {context.path} ({context.endpoint.__module__})"
        audience = context.endpoint.__module__.split(".")[1]
        if audience not in AUDIENCES:
            problems.append(f"{name}: add its package to AUDIENCES in scripts/api_catalogue.py")
        kind = _kind(route, context.methods)
        what = _what(context.endpoint, kind, name, problems)
        who = _who(context.dependant)
        found.append(Row(audience, methods, context.path, who, kind, what))
    if problems:
        raise ValueError("routes the catalogue cannot describe:\n" + "\n".join(problems))
    order = list(AUDIENCES)
    return sorted(found, key=lambda row: order.index(row.audience))  # stable: app order within


def _kind(route: Any, methods: set[str]) -> str:
    """`page` (HTML), `form` (a page's form posts here), `link` (redirect, download) or `API`."""
    from fastapi.responses import HTMLResponse

    from api.core.pages import PageRoute

    if not isinstance(route, PageRoute):
        return "API"
    html = isinstance(route.response_class, type) and issubclass(route.response_class, HTMLResponse)
    if "GET" in methods:
        return "page" if html else "link"
    return "form"


def _what(endpoint: Any, kind: str, name: str, problems: list[str]) -> str:
    """The endpoint docstring's first line, which must say it all (problems otherwise)."""
    doc = inspect.cleandoc(endpoint.__doc__ or "")
    if not doc:
        problems.append(f"{name}: give the endpoint a one-line docstring")
        return ""
    first, *rest = doc.split("\n")
    if rest and rest[0].strip():
        problems.append(f"{name}: make the docstring's first line a whole sentence")
    if kind == "page" and not CJK.search(first):
        problems.append(f"{name}: end the page's docstring with its Chinese name, e.g. (社员)")
    return first.replace("|", "\\|")


def _who(dependant: Any) -> str:
    """The roles the route's role check admits, else what else guards it, else `anyone`."""
    from api.core.deps import get_current_org, key_for_role, require_role
    from api.core.models import Role
    from api.core.sessions import page_session
    from api.ops.routes import metrics_allowed

    role_checks = {
        require_role(Role.ADMIN).__code__,
        key_for_role(Role.ADMIN).__code__,
        page_session(Role.ADMIN).__code__,
    }
    calls = _calls(dependant)
    for call in calls:
        if getattr(call, "__code__", None) in role_checks:
            allowed = inspect.getclosurevars(call).nonlocals["allowed"]
            return ", ".join(role.value for role in Role if role in allowed)
    if metrics_allowed in calls:
        return "scraper: `TEALEDGER_METRICS_KEY`, else loopback"
    if get_current_org in calls:
        return "any organisation"
    return "anyone"


def _calls(dependant: Any) -> list[Any]:
    """Every dependency callable of a route, nested ones included."""
    found = []
    for sub in dependant.dependencies:
        if sub.call is not None:
            found.append(sub.call)
        found.extend(_calls(sub))
    return found


def render(found: list[Row]) -> str:
    """The block between the markers: one table per audience."""
    lines = [
        BEGIN,
        f"<!-- generated from the app's routes by scripts/api_catalogue.py: run `{REGENERATE}` -->",
    ]
    for audience, heading in AUDIENCES.items():
        mine = [row for row in found if row.audience == audience]
        if not mine:
            continue
        lines += ["", f"### {heading}", "", "| method | path | who | kind | what |"]
        lines.append("| --- | --- | --- | --- | --- |")
        for row in mine:
            lines.append(f"| {row.methods} | `{row.path}` | {row.who} | {row.kind} | {row.what} |")
    lines += ["", END]
    return "\n".join(lines)


def current_block(text: str) -> str:
    """The block docs/api.md holds now, markers included."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{DOC.name} has no {BEGIN} ... {END} block")
    return text[start : end + len(END)]


def main(argv: list[str] | None = None) -> int:
    """Print the catalogue, or rewrite it in docs/api.md with --write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the block in docs/api.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="api-catalogue-") as data:
        app = build_app(Path(data))
        try:
            block = render(rows(app))
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 1
        finally:
            app.state.engine.dispose()
    if not args.write:
        print(block)
        return 0
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(text.replace(current_block(text), block), encoding="utf-8")
    print(f"wrote the route catalogue to {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # this checkout's api/, not another one installed
    sys.exit(main())
