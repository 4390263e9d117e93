"""Alerts in real time: the follower's hook scans after new blocks, at most once a minute, and
a failing scan never stops the indexing."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from api.core.follower import Follower
from api.regulator.watch import RiskWatch
from chain.config import ChainSettings
from indexer.engine import Progress
from risk.alerts import list_alerts
from tests.risk.test_cash_out import MERCHANT, OWN, _season
from tests.risk.world import World


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _at(block: int) -> Progress:
    return Progress(start_block=0, checkpoint=block, head=block)


def test_the_watch_scans_new_blocks_at_most_once_a_minute(engine: Engine) -> None:
    world = World(engine)
    _season(world)
    world.pay(MERCHANT, OWN, 40_000)
    world.seal()
    clock = Clock()
    watch = RiskWatch(engine.url.render_as_string(hide_password=False), engine, 60, clock)
    watch(_at(world.block))
    first = watch.last
    assert first is not None and (first.new, first.by_rule.get("cash_out")) == (1, 1)
    assert [a.rule for a in list_alerts(engine)[0]] == ["cash_out"]
    clock.now += 600
    watch(_at(world.block))  # nothing indexed since: no scan, however long ago the last was
    assert watch.last is first
    watch(_at(world.block + 1))
    second = watch.last
    assert second is not first and (second.new, second.seen_again) == (0, 1)
    clock.now += 1
    watch(_at(world.block + 2))  # new blocks, but the last scan was a second ago: waits
    assert watch.last is second
    clock.now += 60
    watch(_at(world.block + 3))
    assert watch.last is not second


def test_a_failing_hook_is_logged_and_indexing_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    def boom(_progress: Progress) -> None:
        raise RuntimeError("database gone")

    follower = Follower("sqlite://", ChainSettings(), after_progress=boom)
    follower._progress(_at(7))  # the follower's own callback: must not raise
    assert "work after indexing failed: RuntimeError: database gone" in caplog.text
    assert follower.status().checkpoint == 7


def test_the_watch_holds_while_a_demo_loads_its_season(engine: Engine, tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    from api.core.demo_status import HOLD_STALE_SECONDS, DemoState, StatusWriter, demo_loading

    world = World(engine)
    _season(world)
    world.pay(MERCHANT, OWN, 40_000)
    world.seal()
    assert not demo_loading(tmp_path)  # no demo here
    status = StatusWriter(tmp_path, farmers=300)
    url = engine.url.render_as_string(hide_password=False)
    watch = RiskWatch(url, engine, 60, Clock(), held=lambda: demo_loading(tmp_path))
    watch(_at(world.block))
    assert watch.last is None and list_alerts(engine)[0] == []  # half a season: not judged
    status.status.updated_at = datetime.now(UTC) - timedelta(seconds=HOLD_STALE_SECONDS + 1)
    status.path.write_text(status.status.model_dump_json())
    assert not demo_loading(tmp_path)  # a demo killed mid-way holds nothing for ever
    status.finish(DemoState.DONE)
    watch(_at(world.block))
    assert watch.last is not None and watch.last.new == 1
