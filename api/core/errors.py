"""Map domain errors onto HTTP: reverts to 409 with the decoded error, node down to 503."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.core.metrics import ERRORS
from chain.errors import ContractRevertError, NodeError


def _jsonable(value: Any) -> Any:
    """Decoded ABI values as JSON (bytes as 0x-hex, big ints as strings)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


async def revert_handler(_request: Request, exc: Exception) -> JSONResponse:
    """A contract refused the write: say which rule, with its values."""
    assert isinstance(exc, ContractRevertError)
    ERRORS.labels("revert").inc()
    args = {k: _jsonable(v) for k, v in exc.args_by_name.items()}
    body = {"detail": str(exc), "error": exc.name, "args": args}
    return JSONResponse(body, status_code=409)


async def node_down_handler(_request: Request, exc: Exception) -> JSONResponse:
    """The chain node cannot be reached: nothing was written."""
    ERRORS.labels("node").inc()
    detail = f"the chain node is unavailable, nothing was written; retry later ({exc})"
    return JSONResponse({"detail": detail}, status_code=503)


def install(app: FastAPI) -> None:
    """Register the handlers."""
    app.add_exception_handler(ContractRevertError, revert_handler)
    app.add_exception_handler(NodeError, node_down_handler)
