"""Errors onto HTTP, in one place: a handler per root exception, a status per error class.

Routes and the services they call raise errors of their domain: the chain layer's
(`ChainError`), the supply chain's (`TraceabilityError`), lending's (`LendingError`), the
indexer's (`IndexerError`), the risk monitor's (`AlertError`, `UnknownRuleError`), or the
service's own object-level refusals (`ApiError`: not found, forbidden, conflict). Each root
gets one handler, registered once; `status_of` finds the status of an exception by walking its
class's MRO through `STATUS`, so a new subclass inherits the status of its family unless it is
listed. Pages render the same status and message through `status_of` and `detail_of`.

A refused transaction is 409 with the contract's decoded error (`error`, `args`), a node that
cannot be reached 503 with nothing written, a transaction the node took but did not mine in
time 504.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic import Field as PydField
from starlette import status

from api.core.metrics import ERRORS
from chain.errors import (
    ChainError,
    ConfigError,
    ContractRevertError,
    DeploymentError,
    KeystoreError,
    NodeError,
    TransactionError,
    TransactionOutcomeUnknownError,
    TransactionTimeoutError,
)
from chain.sender import TRANSIENT
from indexer.errors import IndexerError
from lending.errors import (
    BudgetsNotFinancedError,
    ConsentCheckError,
    ConsentRequiredError,
    DecisionExpiredError,
    DecisionNotApprovedError,
    DecisionNotFoundError,
    InvalidRequestError,
    LendingError,
    PrincipalOverLimitError,
    ProfileDataError,
    ProfileNotFoundError,
    StaleLprTableError,
)
from lending.loans.errors import ContractRuleError, LoanTermsError, OrderNotExecutedError
from risk.alerts import AlertError, AlertNotFoundError, AlertTransitionError
from risk.scan import UnknownRuleError
from traceability.digital_link import DigitalLinkError
from traceability.errors import (
    ChainRejectedError,
    InvalidRecordError,
    LotNotFoundError,
    NotDeployedError,
    TraceabilityError,
)


class ApiError(Exception):
    """Root of the refusals the service makes itself; `status` is the HTTP status."""

    status: ClassVar[int] = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, loc: Sequence[str | int] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.loc = tuple(loc)


class Restated(ApiError):
    """Another error, answered with its status and a message that says more."""

    def __init__(self, cause: BaseException, detail: str) -> None:
        super().__init__(detail)
        self.code = status_of(cause)


class Unauthorized(ApiError):
    """No valid API key or session."""

    status = status.HTTP_401_UNAUTHORIZED


class Forbidden(ApiError):
    """The caller may not do this, or the record belongs to someone else."""

    status = status.HTTP_403_FORBIDDEN


class NotFound(ApiError):
    """The record named does not exist."""

    status = status.HTTP_404_NOT_FOUND


class Conflict(ApiError):
    """The request contradicts the state of a record."""

    status = status.HTTP_409_CONFLICT


class Invalid(ApiError):
    """A value the schema allows but the service cannot use."""

    status = status.HTTP_422_UNPROCESSABLE_CONTENT


class Unavailable(ApiError):
    """Something the request needs (node, contracts, index) is not there now; retry later."""

    status = status.HTTP_503_SERVICE_UNAVAILABLE


_NODE_DOWN = "the chain node is not answering right now; try again in a few minutes"
_NOT_TAKEN = "the chain node did not take the transaction; try again in a few minutes"
_NOTHING_WRITTEN = "; nothing was written"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
logger = logging.getLogger(__name__)

# The nearest listed class in an exception's MRO gives its status.
STATUS: dict[type[BaseException], int] = {
    ApiError: status.HTTP_400_BAD_REQUEST,
    # chain
    ChainError: status.HTTP_503_SERVICE_UNAVAILABLE,
    ConfigError: status.HTTP_503_SERVICE_UNAVAILABLE,
    KeystoreError: status.HTTP_503_SERVICE_UNAVAILABLE,
    DeploymentError: status.HTTP_503_SERVICE_UNAVAILABLE,
    NodeError: status.HTTP_503_SERVICE_UNAVAILABLE,
    TransactionError: status.HTTP_503_SERVICE_UNAVAILABLE,
    TransactionTimeoutError: status.HTTP_504_GATEWAY_TIMEOUT,
    TransactionOutcomeUnknownError: status.HTTP_503_SERVICE_UNAVAILABLE,
    ContractRevertError: status.HTTP_409_CONFLICT,
    # supply chain
    TraceabilityError: status.HTTP_409_CONFLICT,
    ChainRejectedError: status.HTTP_409_CONFLICT,
    InvalidRecordError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    NotDeployedError: status.HTTP_503_SERVICE_UNAVAILABLE,
    LotNotFoundError: status.HTTP_404_NOT_FOUND,
    DigitalLinkError: status.HTTP_400_BAD_REQUEST,  # a GTIN's check digit, a lot code's syntax
    # lending
    LendingError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    ContractRuleError: status.HTTP_409_CONFLICT,
    OrderNotExecutedError: status.HTTP_409_CONFLICT,
    LoanTermsError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    ConsentRequiredError: status.HTTP_403_FORBIDDEN,
    ConsentCheckError: status.HTTP_503_SERVICE_UNAVAILABLE,
    ProfileNotFoundError: status.HTTP_404_NOT_FOUND,
    ProfileDataError: status.HTTP_409_CONFLICT,
    InvalidRequestError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    DecisionNotFoundError: status.HTTP_404_NOT_FOUND,
    StaleLprTableError: status.HTTP_503_SERVICE_UNAVAILABLE,  # the message names `lpr update`
    # a decision that cannot become a loan conflicts with its state; budgets the offer cannot
    # take are a bad request body (lending.loans.offers)
    DecisionNotApprovedError: status.HTTP_409_CONFLICT,
    DecisionExpiredError: status.HTTP_409_CONFLICT,
    PrincipalOverLimitError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    BudgetsNotFinancedError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    # indexer
    IndexerError: status.HTTP_503_SERVICE_UNAVAILABLE,
    # risk monitor: a refused status change (wrong step, no reason) conflicts with the alert
    AlertError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    AlertNotFoundError: status.HTTP_404_NOT_FOUND,
    AlertTransitionError: status.HTTP_409_CONFLICT,
    UnknownRuleError: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


def status_of(exc: BaseException) -> int:
    """The HTTP status of an exception (500 for anything this service does not raise)."""
    if isinstance(exc, Restated):
        return exc.code
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, TRANSIENT):
        return status.HTTP_503_SERVICE_UNAVAILABLE
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def revert_of(exc: BaseException) -> ContractRevertError | None:
    """The decoded contract revert behind a domain error, if any."""
    if isinstance(exc, ContractRevertError):
        return exc
    if isinstance(exc, ChainRejectedError):
        return exc.revert
    if isinstance(exc, ContractRuleError) and isinstance(exc.__cause__, ContractRevertError):
        return exc.__cause__
    return None


def refusal(exc: BaseException) -> str:
    """Why one item of a batch is refused, for the batch's answer; an error of the server's
    side (the node down: 5xx) is raised again instead, as nothing of the batch was sent yet."""
    if status_of(exc) >= 500:
        raise exc
    return detail_of(exc)


def detail_of(exc: BaseException) -> str:
    """What the response says: the error's own message, with what to do where it has none."""
    if isinstance(exc, ApiError):
        return exc.detail
    if isinstance(exc, TRANSIENT):
        return _NODE_DOWN
    if isinstance(exc, ChainRejectedError):
        return f"{exc.revert}: {exc}"
    if isinstance(exc, ContractRuleError) and isinstance(exc.__cause__, ContractRevertError):
        return str(exc.__cause__)
    if isinstance(exc, TransactionTimeoutError):
        return (
            f"{exc}: it may still be mined; check before resending "
            "(resending a harvest batch is always safe)"
        )
    if isinstance(exc, TransactionOutcomeUnknownError):
        return _IN_DOUBT
    if isinstance(exc, ContractRevertError):
        return str(exc)
    if isinstance(exc, TransactionError):
        return _NOT_TAKEN
    if isinstance(exc, NodeError):
        return _NODE_DOWN
    if isinstance(exc, KeystoreError | ConfigError):
        return _MISCONFIGURED
    return scrub(str(exc))


_IN_DOUBT = (
    "the chain node stopped answering after your transaction was sent, so it may or may not "
    "have been recorded; once the node is back, check (your lot list, the loan) before "
    "repeating it: resending the same harvest records is always safe, those already recorded "
    "are reported as duplicates"
)
_MISCONFIGURED = (
    "the service cannot sign or reach the chain with its current configuration; "
    "ask the operator to check it (the details are in the service log)"
)
# Internals a message must not show: URLs (node endpoints, database URLs), absolute file
# paths (temporary files, keystores, the install), connection-pool reprs and Python's
# integer-size hint.
_INTERNALS = (
    (re.compile(r"\w*ConnectionPool\(.*", re.DOTALL), "the chain node did not answer"),
    (re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE), "<address>"),
    (re.compile(r"(?<![\w.~])(?:/[\w.@+-]+){2,}/?"), "<file>"),
    (re.compile(r".*set_int_max_str_digits.*", re.DOTALL), "the number has too many digits"),
)


def scrub(message: str) -> str:
    """`message` without internals (the full text is in the log)."""
    for pattern, replacement in _INTERNALS:
        message = pattern.sub(replacement, message)
    return message


def _node_failure(exc: BaseException) -> bool:
    """A node that did not answer or take a transaction (its details go to the log only)."""
    if isinstance(exc, TransactionTimeoutError | TransactionOutcomeUnknownError):
        return False  # sent: it may be recorded, so "nothing was written" would be false
    return isinstance(exc, (*TRANSIENT, TransactionError, NodeError))


def _jsonable(value: Any) -> Any:
    """Decoded ABI values as JSON (bytes as 0x-hex, big ints as strings)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def loc_of(exc: BaseException) -> list[str | int]:
    """Where in the request the problem is (`["request"]` when the error does not say)."""
    return list(getattr(exc, "loc", ()) or ("request",))


def body_of(exc: BaseException) -> dict[str, Any]:
    """The JSON body: `detail`, and for a refused transaction the decoded `error` and `args`.
    A 422's `detail` is a list like FastAPI's validation errors, as the schema promises."""
    detail: Any = detail_of(exc)
    if status_of(exc) == status.HTTP_422_UNPROCESSABLE_CONTENT:
        detail = [{"loc": loc_of(exc), "msg": detail, "type": "value_error"}]
    body: dict[str, Any] = {"detail": detail}
    if isinstance(exc, TransactionOutcomeUnknownError):
        body["transactions"] = list(exc.hashes)
    revert = revert_of(exc)
    if revert is not None:
        body["error"] = revert.name
        body["args"] = {k: _jsonable(v) for k, v in revert.args_by_name.items()}
    return body


def _count(exc: BaseException) -> None:
    """Count reverts and node failures for /metrics."""
    if revert_of(exc) is not None:
        ERRORS.labels("revert").inc()
    elif status_of(exc) == status.HTTP_503_SERVICE_UNAVAILABLE and not isinstance(exc, ApiError):
        ERRORS.labels("node").inc()


async def domain_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Any error of the roots below, as its status and body; a write the node did not take
    says that nothing was written (a read never does)."""
    _count(exc)
    body = body_of(exc)
    if status_of(exc) >= status.HTTP_500_INTERNAL_SERVER_ERROR:
        logger.warning("%s %s: %r", request.method, request.url.path, exc)
    if _node_failure(exc) and request.method not in _READS:
        body["detail"] += _NOTHING_WRITTEN
    return JSONResponse(body, status_code=status_of(exc))


ROOTS: tuple[type[BaseException], ...] = (
    ApiError,
    ChainError,
    TraceabilityError,
    LendingError,
    IndexerError,
    AlertError,
    UnknownRuleError,
    *TRANSIENT,
)
"""Every exception root the service answers for; pages catch exactly these."""


class Problem(BaseModel):
    """Every error but a 422: what went wrong and what to do; a refused transaction adds the
    contract's decoded error and its arguments."""

    detail: str
    error: str | None = None
    args: dict[str, Any] | None = None
    transactions: list[str] | None = PydField(
        default=None, description="Sent, outcome unknown (node stopped answering): check these"
    )


class ValidationItem(BaseModel):
    """One problem of a request: where (`loc`), what (`msg`), which kind (`type`)."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None


class ValidationProblem(BaseModel):
    """A 422: every problem found, as FastAPI reports validation errors."""

    detail: list[ValidationItem]


def _problem(description: str) -> dict[str, Any]:
    """An OpenAPI response entry with the Problem body."""
    return {"model": Problem, "description": description}


RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("The request cannot be read (a body that is not JSON or not UTF-8)"),
    401: _problem("No valid API key or session"),
    403: _problem("Your organisation may not do this, or the record is another's"),
    404: _problem("The record named does not exist (or is not yours to see)"),
    409: _problem("The request contradicts the state of a record or a contract rule"),
    413: _problem("The request body is larger than the service accepts"),
    422: {"model": ValidationProblem, "description": "The request is not valid"},
    429: _problem("Too many requests: wait for Retry-After seconds"),
    503: _problem("The chain node, the contracts or the index are not available: retry later"),
}
"""Every error status the app can answer, documented on every operation."""

MAX_INPUT_CHARS = 200


def safe_input(value: Any, depth: int = 0) -> Any:
    """A rejected input as JSON can carry it: non-finite floats as their repr, long text cut,
    big integers as strings, deep or large containers summarised."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2**53 else _cut(str(value))
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, bytes):
        return _cut(value.decode("utf-8", "replace"))
    if depth >= 2:
        return "..."
    if isinstance(value, dict):
        items = list(value.items())[:20]
        return {_cut(str(k)): safe_input(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple | set | frozenset):
        return [safe_input(v, depth + 1) for v in list(value)[:20]]
    return _cut(str(value))


def _cut(text: str) -> str:
    """`text`, shortened to MAX_INPUT_CHARS."""
    return text if len(text) <= MAX_INPUT_CHARS else text[:MAX_INPUT_CHARS] + "..."


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's validation errors, each with loc, msg, type and a JSON-safe input."""
    cleaned = []
    for error in errors:
        item: dict[str, Any] = {
            "loc": [p if isinstance(p, int) else _cut(str(p)) for p in error.get("loc", ())],
            "msg": _cut(scrub(str(error.get("msg", "invalid value")))),
            "type": str(error.get("type", "value_error")),
        }
        if "input" in error:
            item["input"] = safe_input(error["input"])
        cleaned.append(item)
    return cleaned


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """A request that does not match the schema: 422 with every problem, always serialisable
    (`NaN` in a number field once made the 422 itself fail)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse(
        {"detail": validation_errors(errors)},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


UNEXPECTED = (
    "something went wrong on our side and was logged; try again, and tell the operator if it "
    "keeps happening"
)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback, answered without internals."""
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": UNEXPECTED}, status_code=500)


def install(app: FastAPI) -> None:
    """Register the handler once per root exception, the validation handler and the last
    resort for bugs."""
    app.add_exception_handler(Exception, unexpected_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    for root in ROOTS:
        app.add_exception_handler(root, domain_error_handler)
