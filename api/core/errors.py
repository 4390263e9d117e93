"""Errors onto HTTP, in one place: a handler per root exception, a status per error class.

Routes and the services they call raise errors of their domain: the chain layer's
(`ChainError`), the supply chain's (`TraceabilityError`), lending's (`LendingError`), the
indexer's (`IndexerError`), or the service's own object-level refusals (`ApiError`: not found,
forbidden, conflict). Each root gets one handler, registered once; `status_of` finds the status
of an exception by walking its class's MRO through `STATUS`, so a new subclass inherits the
status of its family unless it is listed. Pages render the same status and message through
`status_of` and `detail_of`.

A refused transaction is 409 with the contract's decoded error (`error`, `args`), a node that
cannot be reached 503 with nothing written, a transaction the node took but did not mine in
time 504.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
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

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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


_NODE_DOWN = "the chain node is unavailable, nothing was written; retry later"

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
    ContractRevertError: status.HTTP_409_CONFLICT,
    # supply chain
    TraceabilityError: status.HTTP_409_CONFLICT,
    ChainRejectedError: status.HTTP_409_CONFLICT,
    InvalidRecordError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    NotDeployedError: status.HTTP_503_SERVICE_UNAVAILABLE,
    LotNotFoundError: status.HTTP_404_NOT_FOUND,
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


def detail_of(exc: BaseException) -> str:
    """What the response says: the error's own message, with what to do where it has none."""
    if isinstance(exc, ApiError):
        return exc.detail
    if isinstance(exc, TRANSIENT):
        return f"{_NODE_DOWN} ({exc})"
    if isinstance(exc, ChainRejectedError):
        return f"{exc.revert}: {exc}"
    if isinstance(exc, ContractRuleError) and isinstance(exc.__cause__, ContractRevertError):
        return str(exc.__cause__)
    if isinstance(exc, TransactionTimeoutError):
        return (
            f"{exc}: it may still be mined; check before resending "
            "(resending a harvest batch is always safe)"
        )
    if isinstance(exc, ContractRevertError):
        return str(exc)
    if isinstance(exc, TransactionError):
        return f"the chain node did not take the transaction, nothing was written; retry ({exc})"
    if isinstance(exc, NodeError):
        return f"{_NODE_DOWN} ({exc})"
    return str(exc)


def _jsonable(value: Any) -> Any:
    """Decoded ABI values as JSON (bytes as 0x-hex, big ints as strings)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def body_of(exc: BaseException) -> dict[str, Any]:
    """The JSON body: `detail`, and for a refused transaction the decoded `error` and `args`."""
    body: dict[str, Any] = {"detail": detail_of(exc)}
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


async def domain_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Any error of the roots below, as its status and body."""
    _count(exc)
    return JSONResponse(body_of(exc), status_code=status_of(exc))


ROOTS: tuple[type[BaseException], ...] = (
    ApiError,
    ChainError,
    TraceabilityError,
    LendingError,
    IndexerError,
    *TRANSIENT,
)
"""Every exception root the service answers for; pages catch exactly these."""


def install(app: FastAPI) -> None:
    """Register the handler once per root exception."""
    for root in ROOTS:
        app.add_exception_handler(root, domain_error_handler)
