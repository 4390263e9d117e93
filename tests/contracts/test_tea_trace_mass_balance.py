"""Property: over random processing graphs, made tea never exceeds what the inputs allow, and
no lot is ever spent twice (hypothesis state machine against TeaTrace on a real EVM)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from chain.errors import ContractRevertError
from chain.events import EventDecoder
from tests.traceability._system import System
from traceability.models import LotKind, LotState

BPS = 10_000
MAX_YIELD = 3_000


@dataclass
class ModelLot:
    """What the test believes about a lot."""

    grams: int
    kind: LotKind
    state: LotState = LotState.HELD


def allowance(lots: list[ModelLot]) -> int:
    """The contract's rule: fresh leaf x max yield (rounded down) + made tea."""
    fresh = sum(lot.grams for lot in lots if lot.kind is LotKind.FRESH_LEAF)
    made = sum(lot.grams for lot in lots if lot.kind is LotKind.MADE_TEA)
    return fresh * MAX_YIELD // BPS + made


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` positive pieces (fewer if total is small)."""
    parts = max(1, min(parts, total))
    base = total // parts
    return [base] * (parts - 1) + [total - base * (parts - 1)]


class MassBalance(RuleBasedStateMachine):
    """Harvest, then process random selections of lots (valid or not) with random outputs."""

    system: System
    codec: EventDecoder
    lots = Bundle("lots")

    consumed: Counter[bytes]  # LotConsumed events over every example, from the receipts

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[bytes, ModelLot] = {}
        self.fresh_consumed = 0
        self.made_consumed = 0
        self.made_produced = 0

    @rule(target=lots, masses=st.lists(st.integers(1, 60_000), min_size=1, max_size=3))
    def harvest(self, masses: list[int]):
        s = self.system
        lots = s.harvest(masses)
        s.move(lots, s.coop, s.processor)
        for lot, grams in zip(lots, masses, strict=True):
            self.model[lot] = ModelLot(grams, LotKind.FRESH_LEAF)
        return multiple(*lots)

    @rule(
        target=lots,
        inputs=st.lists(lots, min_size=1, max_size=4),
        outputs=st.integers(1, 3),
        share=st.integers(1, 12_000),
    )
    def process(self, inputs: list[bytes], outputs: int, share: int):
        """Ask for `share` bp of the allowance (above 10000 must fail)."""
        chosen = [self.model[lot] for lot in inputs]
        limit = allowance(chosen)
        total = max(1, limit * share // BPS)
        masses = split(total, outputs)
        spent = next(
            (
                lot
                for i, lot in enumerate(inputs)
                if inputs.index(lot) < i or self.model[lot].state is LotState.CONSUMED
            ),
            None,
        )
        try:
            made = self.system.process(inputs, masses)
        except ContractRevertError as exc:
            if spent is not None:
                assert exc.name == "TeaTraceLotAlreadyConsumed"
                assert exc.args_by_name["lot"] in inputs
            else:
                assert exc.name == "TeaTraceYieldExceeded", exc
                assert total > limit
                assert exc.args_by_name["allowedGrams"] == limit
            return multiple()
        assert spent is None, "a consumed lot was spent again"
        assert sum(masses) <= limit
        logs = (self.codec.decode(dict(log)) for log in self.system.last_receipt["logs"])
        self.consumed.update(e.args["lot"] for e in logs if e and e.name == "LotConsumed")
        for lot in chosen:
            lot.state = LotState.CONSUMED
            if lot.kind is LotKind.FRESH_LEAF:
                self.fresh_consumed += lot.grams
            else:
                self.made_consumed += lot.grams
        self.made_produced += sum(masses)
        for lot, grams in zip(made, masses, strict=True):
            self.model[lot] = ModelLot(grams, LotKind.MADE_TEA)
        return multiple(*made)

    @invariant()
    def chain_matches_model(self):
        if not self.model:
            return
        ids = list(self.model)
        found = self.system.tt.functions.lots(ids).call()
        for lot, (holder, grams, state, kind, recalled) in zip(ids, found, strict=True):
            expected = self.model[lot]
            assert (grams, LotState(state), LotKind(kind), recalled) == (
                expected.grams,
                expected.state,
                expected.kind,
                False,
            )
            assert holder == self.system.processor.address

    @invariant()
    def mass_never_grows_beyond_the_ratio(self):
        assert self.made_produced <= self.fresh_consumed * MAX_YIELD // BPS + self.made_consumed


def test_mass_balance_over_random_process_graphs(system: System):
    MassBalance.system = system
    MassBalance.codec = EventDecoder(system.tt.abi)
    MassBalance.consumed = Counter()
    run_state_machine_as_test(
        MassBalance,
        settings=settings(
            max_examples=12,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # Over every example: each lot was consumed at most once, by the chain's own events.
    assert MassBalance.consumed, "the machine never processed anything"
    assert max(MassBalance.consumed.values()) == 1
