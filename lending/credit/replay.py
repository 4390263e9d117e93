"""Replay: recompute a stored decision from its own inputs, for an auditor.

A decision names its profile snapshot, model version, policy and contract date; `replay` runs
the pure `evaluate` again on them (and, given the profile, recomputes the features too) and
lists every field that differs. A decision priced on a table assumed unchanged (the demo's,
lending.pricing.lpr.LprTable.assuming_unchanged_through) replays with the same assumption
made on the same base table; its version says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict

from lending.credit.decision import CreditDecision, DecisionRecord, evaluate
from lending.credit.features import ProfileSnapshot, sha256_hex, snapshot_from_profile
from lending.credit.scorecard import Scorecard, model_by_version
from lending.pricing.lpr import ASSUMPTION_TAG, LprTable, load_lpr_table


class ReplayResult(BaseModel):
    """A stored decision recomputed from its own inputs, and whether the two agree."""

    model_config = ConfigDict(frozen=True)

    decision_id: str
    matches: bool
    differences: tuple[str, ...]
    stored_hash: str
    recomputed_hash: str
    recomputed: CreditDecision


def replay(
    record: DecisionRecord,
    *,
    lpr_table: LprTable | None = None,
    models: Sequence[Scorecard] = (),
    profile: Mapping[str, Any] | object | None = None,
) -> ReplayResult:
    """Recompute a stored decision (and, given the profile, its features) and compare."""
    stored = record.decision
    snapshot = ProfileSnapshot(
        farmer_id=stored.farmer_id,
        block_number=stored.profile_block_number,
        block_hash=stored.profile_block_hash,
        as_of=stored.profile_as_of,
        features=stored.features,
    )
    differences: list[str] = []
    if profile is not None and snapshot_from_profile(profile) != snapshot:
        differences.append("profile")
    if stored.policy.policy_hash != stored.policy_hash:
        differences.append("policy_hash")
    recomputed = evaluate(
        snapshot,
        model=model_by_version(stored.model_version, models),
        policy=stored.policy,
        contract_date=stored.contract_date,
        lpr_table=lpr_table or _assumed_table(stored),
    )
    a, b = stored.model_dump(mode="json"), recomputed.model_dump(mode="json")
    differences += [k for k in a if a[k] != b.get(k)]
    return ReplayResult(
        decision_id=record.decision_id,
        matches=not differences,
        differences=tuple(differences),
        stored_hash=sha256_hex(stored.canonical()),
        recomputed_hash=sha256_hex(recomputed.canonical()),
        recomputed=recomputed,
    )


def _assumed_table(stored: CreditDecision) -> LprTable | None:
    """The assumed-unchanged table a decision was priced with, rebuilt; None if it used none."""
    quote = stored.disclosure.rate_cap.lpr if stored.disclosure is not None else None
    if quote is None or ASSUMPTION_TAG not in quote.table_version:
        return None
    base_version, _, through = quote.table_version.partition(ASSUMPTION_TAG)
    base = load_lpr_table()
    if base.version != base_version:
        return None  # another base table: the replay shows the difference
    return base.assuming_unchanged_through(date.fromisoformat(through))
