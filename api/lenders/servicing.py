"""Servicing many loans at once: the loans an action is due on, and the action sent to them.

After a draw window closes a lender returns the unspent money of every loan it covered; after a
grace period it marks the unpaid ones overdue; after the default days it declares the rest in
default. One at a time that is a request and a block per loan. Here each loan of a batch is
checked as the single route checks it (yours, and an eth_call of the very call: a loan the
contract would refuse is listed with its reason and nothing is sent for it; a status refresh
that would change nothing is refused too), then the rest go back to back with measured gas
bounds (shared blocks where the node mines on demand) and their receipts are read together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Engine
from web3.contract.contract import ContractFunction

from api.core.chain import loan_desk, org_sender
from api.core.errors import ROOTS, Conflict, detail_of, refusal
from api.core.models import Organisation
from api.core.settings import ApiSettings
from api.lenders.portfolio import (
    ACTION_FUNCTIONS,
    Action,
    PortfolioLoan,
    action_call,
    action_gas,
    loan_rows,
    own_state,
    own_states,
)
from api.lenders.service import LoanPublic, loan_public
from chain.client import ChainClient
from chain.clock import chain_now
from chain.views import try_many, view
from lending.loans.contracts import LOAN_ESCROW
from lending.loans.disbursement import LoanState, LoanStatus
from lending.loans.errors import translate_reverts, translated

MAX_SERVICE_BATCH = 200
"""Loans one batch services: its transactions fit in a few blocks."""

Escrow = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
FUNDED = {LoanStatus.ACTIVE, LoanStatus.OVERDUE}


class ServiceBatch(BaseModel):
    """One servicing action for many of your loans."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    escrows: list[Escrow] = Field(min_length=1, max_length=MAX_SERVICE_BATCH)


class ServiceRefused(BaseModel):
    """A loan the batch did not service, and why (nothing was sent for it unless it says so)."""

    escrow: str
    reason: str


class ServiceBatchOut(BaseModel):
    """The loans a batch serviced (their state after) and those it refused."""

    action: Action
    serviced: list[LoanPublic]
    refused: list[ServiceRefused]


def check_action(chain: ChainClient, state: LoanState, call: ContractFunction) -> None:
    """eth_call `call` as the loan's lender: its named error if the contract would refuse it,
    and 409 for a refresh that would not change the status."""
    with translate_reverts():
        after = chain.check_call(call, state.lender)
    if call.fn_name == ACTION_FUNCTIONS[Action.REFRESH] and not _changes(state, after):
        status = state.status.name.lower()
        raise Conflict(f"nothing to refresh: loan #{state.loan_id} stays {status} for now")


@dataclass(frozen=True)
class _Ready:
    """A loan that passed every check, its call waiting to be sent with the batch's others."""

    escrow: str
    call: ContractFunction


@dataclass(frozen=True)
class _Candidate:
    """A loan of the batch that passed the checks before its eth_call."""

    state: LoanState
    call: ContractFunction


def _candidate_for(
    chain: ChainClient, org: Organisation, action: Action, escrow: str
) -> _Candidate | ServiceRefused:
    """One loan of the batch with its call, or refused with the reason."""
    try:
        desk, state = own_state(chain, org, escrow)
        return _Candidate(state, action_call(desk, action, state.escrow))
    except ROOTS as exc:
        return ServiceRefused(escrow=escrow, reason=refusal(exc))


def _errors(
    chain: ChainClient, action: Action, candidates: list[_Candidate]
) -> list[Exception | None]:
    """Each candidate's eth_call as its lender: the error that refuses it, or None. One batch,
    but for a refresh, which also needs what the call returns."""
    if action is Action.REFRESH or not candidates:
        return [_error_of(chain, c) for c in candidates]
    lender = candidates[0].state.lender  # own_state: every loan here is this lender's
    return [None if e is None else translated(e) for e in chain.check_calls(
        [c.call for c in candidates], lender)]  # fmt: skip


def _error_of(chain: ChainClient, candidate: _Candidate) -> Exception | None:
    """check_action's refusal of one candidate, or None."""
    try:
        check_action(chain, candidate.state, candidate.call)
    except ROOTS as exc:
        return exc
    return None


def _checked(
    chain: ChainClient, org: Organisation, action: Action, escrows: list[str]
) -> list[_Ready | ServiceRefused]:
    """Each loan of the batch ready to send, or refused with the reason, in the batch's order
    (a loan listed twice is refused the second time)."""
    firsts = [_candidate_for(chain, org, action, escrow) for escrow in escrows]
    candidates = [f for f in firsts if isinstance(f, _Candidate)]
    errors = dict(zip(map(id, candidates), _errors(chain, action, candidates), strict=True))
    seen: set[str] = set()
    out: list[_Ready | ServiceRefused] = []
    for escrow, first in zip(escrows, firsts, strict=True):
        if isinstance(first, ServiceRefused):
            out.append(first)
        elif (key := first.state.escrow.lower()) in seen:
            reason = f"loan #{first.state.loan_id} is listed twice in this batch"
            out.append(ServiceRefused(escrow=escrow, reason=reason))
        elif (error := errors[id(first)]) is not None:
            out.append(ServiceRefused(escrow=escrow, reason=refusal(error)))
        else:
            seen.add(key)
            out.append(_Ready(first.state.escrow, first.call))
    return out


def service_loans(
    chain: ChainClient, settings: ApiSettings, org: Organisation, body: ServiceBatch
) -> ServiceBatchOut:
    """Send one action to many of your loans: each checked first (the eth_calls in one batch;
    a refused loan sends nothing), the rest back to back; one that fails on chain is listed
    with its named error."""
    checked = _checked(chain, org, body.action, body.escrows)
    ready = [c for c in checked if isinstance(c, _Ready)]
    refused = [c for c in checked if isinstance(c, ServiceRefused)]
    serviced: list[LoanPublic] = []
    if ready:
        desk = loan_desk(chain)
        sender = org_sender(chain, settings, org)
        sent = desk.send_servicing([r.call for r in ready], sender, action_gas(body.action))
        done: list[str] = []
        for item, outcome in zip(ready, sent, strict=True):
            if isinstance(outcome, Exception):
                reason = f"failed on chain: {detail_of(outcome)}"
                refused.append(ServiceRefused(escrow=item.escrow, reason=reason))
            else:
                done.append(item.escrow)
        serviced = [loan_public(state) for state in desk.states(done)]
    return ServiceBatchOut(action=body.action, serviced=serviced, refused=refused)


def _candidate(action: Action, state: LoanState, now: int) -> bool:
    """Whether `action` may be due on the loan by its state alone (the eth_call decides)."""
    past_due = state.outstanding_fen > 0 and now > state.due_date
    return {
        Action.RETURN_UNSPENT: state.status in FUNDED
        and state.available_fen > 0
        and now > state.draw_deadline,
        Action.REFRESH: state.status is LoanStatus.ACTIVE and past_due,
        Action.DEFAULT: state.status in FUNDED and past_due,
        Action.WRITE_OFF: state.status is LoanStatus.DEFAULTED,
    }[action]


class DueLoans(BaseModel):
    """Your loans an action is due on now (newest first), at the chain time read."""

    action: Action
    chain_time: int
    items: list[PortfolioLoan]


def due_loans(
    chain: ChainClient, action: Action, states: Sequence[LoanState], now: int
) -> list[LoanState]:
    """Those of `states` (one lender's) that `action` would act on now: the candidates by
    their state, then an eth_call of each as its lender, in JSON-RPC batches (chain.views), so
    the desk proposes nothing the contract would refuse. `now`: the chain time the states
    were read at."""
    candidates = [s for s in states if _candidate(action, s, now)]
    if not candidates:
        return []
    call = view(chain.artifacts[LOAN_ESCROW].abi, ACTION_FUNCTIONS[action])
    lender = candidates[0].lender
    outcomes = try_many(chain.w3, lender, [(s.escrow, call, ()) for s in candidates])
    return [s for s, out in zip(candidates, outcomes, strict=True) if _would_act(action, s, out)]


def _would_act(action: Action, state: LoanState, outcome: tuple[Any, ...] | None) -> bool:
    """Whether the eth_call of an action passed (a refresh: and would change the status)."""
    if outcome is None:
        return False
    return action is not Action.REFRESH or _changes(state, outcome[0])


def _changes(state: LoanState, status_after: int) -> bool:
    """Whether a refresh that leaves the loan in `status_after` changes it."""
    return LoanStatus(int(status_after)) is not state.status


def due_now(engine: Engine, chain: ChainClient, org: Organisation, action: Action) -> DueLoans:
    """Your loans `action` is due on now."""
    now = chain_now(chain.w3)
    due = due_loans(chain, action, own_states(chain, org), now)
    return DueLoans(action=action, chain_time=now, items=loan_rows(engine, due, now))
