"""docs/api.md's route catalogue is what scripts/api_catalogue.py makes of the app now."""

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.responses import HTMLResponse

from api.core.pages import page_router

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "api_catalogue.py"


def _load_script() -> ModuleType:
    """scripts/ is no package: load the catalogue script by path."""
    spec = importlib.util.spec_from_file_location("api_catalogue", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


catalogue = _load_script()


def test_docs_list_every_route_and_page(app):
    """A route added, removed or redescribed without regenerating the docs fails here."""
    documented = catalogue.current_block(catalogue.DOC.read_text(encoding="utf-8"))
    generated = catalogue.render(catalogue.rows(app))
    assert documented == generated, (
        "docs/api.md's route catalogue is out of date: run "
        "`python scripts/api_catalogue.py --write` and commit docs/api.md"
    )


def test_roles_come_from_each_routes_check(app):
    """The API's and the pages' role checks, the metrics guard, and open routes."""
    who = {(row.methods, row.path): row.who for row in catalogue.rows(app)}
    assert who["GET", "/lenders/loans"] == "lender"
    assert who["POST", "/cooperatives/processing"] == "processor"
    assert who["POST", "/cooperatives/shipments"] == "cooperative, processor, distributor"
    assert who["GET", "/supply"] == "cooperative, processor, distributor"
    assert who["GET", "/farmer"] == "farmer"
    assert who["GET", "/metrics"].startswith("scraper")
    assert who["GET", "/trace/{lot}"] == "anyone"


def test_an_undescribed_route_or_page_is_refused(app):
    """No docstring, a first line cut mid-sentence, a page without its Chinese name."""

    def undocumented() -> dict[str, str]:
        return {}

    def wrapped() -> dict[str, str]:
        """A first line that stops
        in the middle of its sentence."""
        return {}

    def english_page() -> HTMLResponse:
        """A page named in English only."""
        return HTMLResponse("")

    for endpoint in (undocumented, wrapped, english_page):
        endpoint.__module__ = "api.lenders.routes"
    app.add_api_route("/lenders/undocumented", undocumented)
    app.add_api_route("/lenders/wrapped", wrapped)
    pages = page_router()
    pages.add_api_route("/lender/english", english_page, response_class=HTMLResponse)
    app.include_router(pages)
    with pytest.raises(ValueError) as refused:
        catalogue.rows(app)
    message = str(refused.value)
    assert "GET /lenders/undocumented (api.lenders.routes): give the endpoint" in message
    assert "GET /lenders/wrapped (api.lenders.routes): make the docstring's first line" in message
    assert "GET /lender/english (api.lenders.routes): end the page's docstring" in message


def test_the_command_prints_the_documented_block():
    """`python scripts/api_catalogue.py` builds its own app, from this checkout."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    documented = catalogue.current_block(catalogue.DOC.read_text(encoding="utf-8"))
    assert done.stdout.rstrip("\n") == documented
