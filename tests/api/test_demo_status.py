"""The home page shows a running demo's progress and what is indexed so far."""

import json

import pytest
from fastapi.testclient import TestClient

from api.core.demo_status import DemoState, StatusWriter, read_status, status_path
from api.main import create_app
from indexer.runner import index_once
from tests._fixtures import client_for, needs_node
from tests.traceability._system import build_system


def test_no_demo_no_panel(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "demo-progress" not in page.text and "查询茶叶批次" in page.text


def test_a_running_demo_shows_its_steps_in_chinese_and_english_and_refreshes(client, api_settings):
    status = StatusWriter(api_settings.data_dir, farmers=120_000)
    status.step("harvest records", 1_234, 2_914_808)
    status.step("harvest records", 2_000, 2_914_808)  # the same bar, advanced
    status.step("processing runs", 0, 93_000)
    status.flush()
    page = client.get("/").text
    assert '<meta http-equiv="refresh"' in page
    assert "120,000 户茶农" in page and "进行中" in page and "running" in page
    assert "鲜叶交售记录" in page and "harvest records" in page
    assert "2,000 / 2,914,808" in page and page.count("harvest records") == 1
    assert "茶厂加工批次" in page
    assert "索引尚未开始" in page  # nothing indexed into this database yet


def test_a_finished_or_failed_demo_stops_refreshing(client, api_settings):
    status = StatusWriter(api_settings.data_dir, farmers=300)
    status.finish(DemoState.DONE)
    page = client.get("/").text
    assert "已完成" in page and "refresh" not in page
    status.finish(DemoState.FAILED, "ChainError: <node gone>")
    page = client.get("/").text
    assert "已中止" in page and "&lt;node gone&gt;" in page and "<node gone>" not in page


def test_an_unreadable_status_file_is_no_demo(client, api_settings):
    path = status_path(api_settings.data_dir)
    for junk in (b"\xff\xfe garbage", b"[]", json.dumps({"state": "running"}).encode()):
        path.write_bytes(junk)
        assert read_status(api_settings.data_dir) is None
        page = client.get("/")
        assert page.status_code == 200 and "demo-progress" not in page.text


@needs_node()
@pytest.mark.node
def test_the_panel_counts_what_the_index_holds(api_settings, anvil_node, tmp_path):
    system = build_system(client_for(anvil_node, tmp_path / "chain"))
    system.harvest([40_000, 35_000, 20_000])
    index_once(system.client, api_settings.database_url)
    StatusWriter(api_settings.data_dir, farmers=3).flush()
    with TestClient(create_app(api_settings, chain=system.client)) as http:
        page = http.get("/").text
    assert 'id="indexed"' in page
    cards = page.split('id="indexed"')[1]
    assert "鲜叶交售" in cards and "<b>3</b>" in cards  # three harvest records


def test_a_demo_that_stopped_writing_shows_as_interrupted(client, api_settings):
    from datetime import UTC, datetime, timedelta

    from api.core.demo_status import HOLD_STALE_SECONDS

    status = StatusWriter(api_settings.data_dir, farmers=300)
    status.status.updated_at = datetime.now(UTC) - timedelta(seconds=HOLD_STALE_SECONDS + 5)
    status.path.write_text(status.status.model_dump_json())
    page = client.get("/").text
    assert "已中断" in page and "interrupted" in page and "refresh" not in page


def test_the_progress_page_in_the_browser_at_phone_and_desktop_width(app, api_settings):
    from tests.api.browser import browser_page, screenshot, serve

    status = StatusWriter(api_settings.data_dir, farmers=300)
    for name, done, total in (
        ("farmers and plots", 1, 1),
        ("harvest records", 6_912, 6_912),
        ("processing runs", 420, 930),
        ("quality, sales, recall", 0, 1),
    ):
        status.step(name, done, total)  # fmt: skip
    status.flush()
    with serve(app) as base, browser_page() as page:
        page.goto(base + "/")
        assert "茶厂加工批次" in page.inner_text("#demo-steps")
        assert "420 / 930" in page.inner_text("#demo-steps")
        phone = screenshot(page, "demo-progress")
        page.set_viewport_size({"width": 1280, "height": 900})
        desktop = screenshot(page, "demo-progress-1280")
    assert phone.stat().st_size > 10_000 and desktop.stat().st_size > 10_000
