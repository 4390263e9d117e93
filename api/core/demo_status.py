"""The demo's progress, as a file in the data dir: `tealedger demo` writes it, the home page
shows it, so the service answers while the season is still being recorded behind it."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func, select

from api.core.errors import Unavailable
from api.core.indexed import indexed_block, indexed_read
from indexer import models as indexer_models

STATUS_FILE = "demo-status.json"
HOLD_STALE_SECONDS = 600
"""A running demo's status not rewritten for this long is a demo that was killed."""
WRITE_EVERY_SECONDS = 0.5
"""Progress bars advance thousands of times a stage; the file is rewritten at most this often."""

STEP_NAMES_ZH = {
    "farmers and plots": "茶农与茶园登记",
    "harvest records": "鲜叶交售记录",
    "leaf to the factory": "鲜叶运往茶厂",
    "processing runs": "茶厂加工批次",
    "quality, sales, recall": "质检、销售与召回",
    "consents to the lender": "授权银行查询",
    "index, then credit decisions": "索引并授信",
    "offers made": "贷款要约",
    "offers signed by farmers": "茶农签署要约",
    "loans issued": "贷款发放",
    "merchant payments": "定向支付商户",
    "unspent returned": "未用额度退回",
    "sales settled": "销售回款结算",
    "repaid by farmers on time": "按时还款",
    "marked overdue": "标记逾期",
    "repaid late": "逾期后还款",
    "declared in default": "认定违约",
    "index the chain": "链上数据索引",
}
"""Chinese names of the demo's steps (the progress bars' English descriptions)."""


class DemoState(StrEnum):
    """Where the demo run is."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


STATE_ZH = {DemoState.RUNNING: "进行中", DemoState.DONE: "已完成", DemoState.FAILED: "已中止"}


class DemoStep(BaseModel):
    """One progress bar of the demo."""

    name: str = Field(max_length=80)
    done: int = Field(ge=0)
    total: int = Field(ge=0)

    @property
    def name_zh(self) -> str:
        """The step's Chinese name (its English one where none is known)."""
        return STEP_NAMES_ZH.get(self.name, self.name)

    @property
    def percent(self) -> int:
        """Whole percent done."""
        return 100 if self.total == 0 else min(100, self.done * 100 // self.total)


class DemoStatus(BaseModel):
    """What the home page shows of a demo run."""

    state: DemoState = DemoState.RUNNING
    farmers: int = Field(ge=0)
    started_at: datetime
    updated_at: datetime
    steps: list[DemoStep] = Field(default_factory=list, max_length=100)
    message: str = Field(default="", max_length=500)

    @property
    def interrupted(self) -> bool:
        """A run still marked running that stopped writing: killed without a word."""
        idle = (datetime.now(UTC) - self.updated_at).total_seconds()
        return self.state is DemoState.RUNNING and idle >= HOLD_STALE_SECONDS

    @property
    def shown_state(self) -> str:
        """The state as the page shows it (a silent run is interrupted)."""
        return "interrupted" if self.interrupted else self.state.value

    @property
    def state_zh(self) -> str:
        """The state in Chinese."""
        return "已中断" if self.interrupted else STATE_ZH[self.state]

    @property
    def minutes(self) -> str:
        """Minutes and seconds since the run started (to its last update)."""
        seconds = int((self.updated_at - self.started_at).total_seconds())
        return f"{seconds // 60}:{seconds % 60:02d}"


def demo_loading(data_dir: Path) -> bool:
    """True while a demo in `data_dir` is still running (its status written recently)."""
    status = read_status(data_dir)
    return status is not None and status.state is DemoState.RUNNING and not status.interrupted


def status_path(data_dir: Path) -> Path:
    """Where the demo of `data_dir` keeps its status."""
    return data_dir / STATUS_FILE


def read_status(data_dir: Path) -> DemoStatus | None:
    """The last demo run's status; None when no demo ran here (or the file is unreadable)."""
    try:
        return DemoStatus.model_validate_json(status_path(data_dir).read_bytes())
    except (OSError, ValidationError):
        return None


class StatusWriter:
    """Keeps the status file of one demo run current (atomically replaced, throttled)."""

    def __init__(self, data_dir: Path, farmers: int) -> None:
        now = datetime.now(UTC)
        self.path = status_path(data_dir)
        self.status = DemoStatus(farmers=farmers, started_at=now, updated_at=now)
        self._written = 0.0
        self.flush()

    def step(self, name: str, done: int, total: int) -> None:
        """Record a step's count (a new step is appended); written at most twice a second."""
        for step in self.status.steps:
            if step.name == name:
                step.done, step.total = done, total
                break
        else:
            self.status.steps.append(DemoStep(name=name, done=done, total=total))
        if time.monotonic() - self._written >= WRITE_EVERY_SECONDS:
            self.flush()

    def finish(self, state: DemoState, message: str = "") -> None:
        """The run ended (done or failed)."""
        self.status.state = state
        self.status.message = message[:500]
        self.flush()

    def flush(self) -> None:
        """Write the status now."""
        self.status.updated_at = datetime.now(UTC)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.status.model_dump(mode="json"), ensure_ascii=False))
        os.replace(temporary, self.path)
        self._written = time.monotonic()


class IndexedSoFar(BaseModel):
    """What the service's index holds so far (the pages read it)."""

    block: int
    farmers: int
    harvests: int
    made_lots: int
    loans: int


def indexed_so_far(database_url: str) -> IndexedSoFar | None:
    """Counts of the indexed season; None before the indexer has created its tables."""
    tables = {
        "farmers": indexer_models.Farmer,
        "harvests": indexer_models.Harvest,
        "made_lots": indexer_models.LotProduced,
        "loans": indexer_models.Loan,
    }
    try:
        with indexed_read(database_url) as conn:
            counts = {
                name: int(conn.execute(select(func.count()).select_from(model)).scalar() or 0)
                for name, model in tables.items()
            }
            return IndexedSoFar(block=indexed_block(conn), **counts)
    except Unavailable:
        return None
