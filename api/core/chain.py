"""Chain plumbing of the cooperative and farmer routes.

- `chain_call()` turns what the traceability services raise into HTTP: a refused transaction
  becomes the global 409 `{"error": name, "args": {...}}` (the decoded custom error, with the
  domain message appended), a node that cannot be reached or a failed send becomes 503.
- `recording_service()` signs as the calling organisation (its keystore-held key).
- `lot_views()` is the object-level check of every route that names lots: unknown lot 404,
  a lot held by another organisation 403.
- `organisation()` resolves an organisation named in a body or path (404 / 422).

Ownership found on chain is public (anyone can call `TeaTrace.farmer(id)` or `lot(id)`), so a
record of another organisation is answered with 403, not disguised as 404.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

from fastapi import HTTPException, status
from sqlmodel import Session

from api.admin.chain_roles import org_account
from api.core.models import Organisation, Role
from api.core.settings import ApiSettings
from chain.client import ChainClient
from chain.errors import (
    ContractRevertError,
    TransactionError,
    TransactionTimeoutError,
    revert_class,
)
from chain.sender import TRANSIENT
from traceability.errors import (
    ChainRejectedError,
    InvalidRecordError,
    NotDeployedError,
    TraceabilityError,
)
from traceability.models import LotView
from traceability.service import RecordingService

ZERO_ADDRESS = "0x" + "00" * 20
SUPPLY_CHAIN_ROLES = frozenset({Role.COOPERATIVE, Role.PROCESSOR, Role.DISTRIBUTOR})


def hex32(value: bytes) -> str:
    """0x-hex of a 32-byte id."""
    return "0x" + bytes(value).hex()


def tx_hex(receipt: object) -> str:
    """The transaction hash of a receipt, 0x-hex."""
    return "0x" + bytes(receipt["transactionHash"]).hex()  # type: ignore[index]


def parse_id(value: str, what: str) -> bytes:
    """A 0x + 64 hex digit id from a path or query, else 422."""
    text = value.strip()
    message = f"a {what} id is 0x followed by 64 hex digits"
    if not text.startswith("0x") or len(text) != 66:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message) from None


def same_address(a: str | None, b: str | None) -> bool:
    """Addresses equal regardless of checksum case."""
    return (a or ZERO_ADDRESS).lower() == (b or ZERO_ADDRESS).lower()


@contextmanager
def chain_call() -> Iterator[None]:
    """Map traceability and chain failures onto the service's HTTP errors."""
    try:
        yield
    except ChainRejectedError as exc:
        # Re-raised as the decoded revert: the global handler answers 409 with name and values.
        revert = exc.revert
        raise revert_class(exc.name)(exc.name, exc.args_by_name, revert.data, f": {exc}") from exc
    except ContractRevertError:
        raise
    except InvalidRecordError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except NotDeployedError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    except TransactionTimeoutError as exc:
        raise HTTPException(
            status.HTTP_504_GATEWAY_TIMEOUT,
            f"{exc}: it may still be mined; check before resending "
            "(resending a harvest batch is always safe)",
        ) from exc
    except TransactionError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the chain node did not take the transaction, nothing was written; retry ({exc})",
        ) from exc
    except TRANSIENT as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the chain node is unavailable, nothing was written; retry later ({exc})",
        ) from exc
    except TraceabilityError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


def recording_service(
    chain: ChainClient, settings: ApiSettings, org: Organisation
) -> RecordingService:
    """The recording service acting as `org` (signs with its keystore key)."""
    with chain_call():
        return RecordingService(chain, org_account(settings, org))


def lot_views(
    service: RecordingService, lots: Sequence[bytes], held_by: str | None = None
) -> list[LotView]:
    """On-chain views of `lots`; 404 for an unknown lot, 403 if one is held by someone else."""
    with chain_call():
        views = service.lots(list(lots))
    for view in views:
        if not view.exists:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"lot {hex32(view.lot)} does not exist")
        if held_by is not None and not same_address(view.holder, held_by):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"lot {hex32(view.lot)} is held by {view.holder}, not by you ({held_by})",
            )
    return views


def organisation(session: Session, org_id: int, roles: Collection[Role], what: str) -> Organisation:
    """An active organisation of one of `roles`: 404 if unknown, 422 if of another kind."""
    org = session.get(Organisation, org_id)
    if org is None or not org.active:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"organisation {org_id} does not exist")
    if org.role not in roles:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"organisation {org_id} is a {org.role.value}, not a {what}",
        )
    return org
