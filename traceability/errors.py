"""Exceptions of the traceability package; contract reverts come back as named domain errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chain.errors import ContractRevertError


class TraceabilityError(Exception):
    """Root of every error raised by the traceability package."""


class InvalidRecordError(TraceabilityError):
    """A record failed validation before anything was sent; `problems` lists field messages."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class NotDeployedError(TraceabilityError):
    """TeaTrace (or ConsentRegistry) is not deployed on the connected chain."""


class LotNotFoundError(TraceabilityError):
    """A lineage query named a lot that does not exist on chain."""


class RoleMissingError(TraceabilityError):
    """No signing account holds the role an action needs."""


class ChainRejectedError(TraceabilityError):
    """The contract refused an action; `name` and `args_by_name` are the decoded custom error."""

    def __init__(self, message: str, revert: ContractRevertError) -> None:
        super().__init__(message)
        self.revert = revert
        self.name = revert.name
        self.args_by_name: dict[str, Any] = revert.args_by_name


class UnauthorizedError(ChainRejectedError):
    """The sender lacks the role, is not the holder, or acts for another cooperative's farmer."""


class UnknownRecordError(ChainRejectedError):
    """A farmer, plot or lot the action names is not on chain."""


class DuplicateRecordError(ChainRejectedError):
    """A farmer, plot or lot with that id already exists."""


class LotStateError(ChainRejectedError):
    """The lot is consumed, in transit, recalled, or otherwise not in a state for this action."""


class MassBalanceError(ChainRejectedError):
    """Output mass exceeds what the inputs allow, or a mass is zero."""


class FarmerStateError(ChainRejectedError):
    """The farmer is deactivated (or already has the requested status)."""


class ConsentError(ChainRejectedError):
    """A consent could not be granted or revoked."""


class InvalidValueError(ChainRejectedError):
    """A value the contract checks is out of range (grade, date, yield, price, recipient...)."""


def _hex(value: Any) -> str:
    """Render bytes as 0x-hex, anything else as str."""
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


_Message = Callable[[dict[str, Any]], str]


def _m(template: str) -> _Message:
    """A message renderer: `template` formatted with the error's arguments as hex/str."""
    return lambda a: template.format(**{k: _hex(v) for k, v in a.items()})


_ROLE_NAMES: dict[str, str] = {}


def role_name(role: bytes) -> str:
    """Human name of a role hash, e.g. COOPERATIVE_ROLE (hex if unknown)."""
    return _ROLE_NAMES.get("0x" + role.hex(), "0x" + role.hex())


def _unauthorized(a: dict[str, Any]) -> str:
    """Message for OpenZeppelin's AccessControlUnauthorizedAccount."""
    return (
        f"account {a['account']} lacks {role_name(a['neededRole'])}: ask the TeaTrace admin "
        "to grant it (each organisation acts from its own address)"
    )


_MAPPING: dict[str, tuple[type[ChainRejectedError], _Message]] = {
    "AccessControlUnauthorizedAccount": (UnauthorizedError, _unauthorized),
    "TeaTraceSelfGrant": (UnauthorizedError, _m("{account} may not grant itself a role")),
    "TeaTraceNotSupplyChainMember": (
        UnauthorizedError,
        _m("{account} is no cooperative, processor or distributor"),
    ),
    "TeaTraceNotLotHolder": (
        UnauthorizedError,
        _m("lot {lot} is held by {holder}, not by {caller}: only the holder may act on it"),
    ),
    "TeaTraceNotFarmerCooperative": (
        UnauthorizedError,
        _m("farmer {farmer} is a member of cooperative {cooperative}, not of {caller}"),
    ),
    "ConsentNotFarmerWallet": (
        UnauthorizedError,
        _m("only farmer {farmer}'s registered wallet {wallet} may do this, not {caller}"),
    ),
    "TeaTraceUnknownFarmer": (
        UnknownRecordError,
        _m("farmer {farmer} is not registered: register it first"),
    ),
    "TeaTraceUnknownPlot": (
        UnknownRecordError,
        _m("plot {plot} is not registered to farmer {farmer}: register the plot first"),
    ),
    "TeaTraceUnknownLot": (UnknownRecordError, _m("lot {lot} does not exist")),
    "ConsentUnknownFarmer": (UnknownRecordError, _m("farmer {farmer} is not registered")),
    "TeaTraceFarmerExists": (DuplicateRecordError, _m("farmer {farmer} is already registered")),
    "TeaTracePlotExists": (DuplicateRecordError, _m("plot {plot} is already registered")),
    "TeaTraceLotExists": (
        DuplicateRecordError,
        _m("lot {lot} already exists: each output needs a new data hash"),
    ),
    "TeaTraceLotAlreadyConsumed": (
        LotStateError,
        _m("lot {lot} was already consumed by processing; see `tealedger trace {lot}`"),
    ),
    "TeaTraceLotInTransit": (
        LotStateError,
        _m("lot {lot} is in transit to {consignee}: it must be received first"),
    ),
    "TeaTraceLotNotInTransit": (LotStateError, _m("lot {lot} is not in transit (state {state})")),
    "TeaTraceLotRecalled": (
        LotStateError,
        _m("lot {lot} is recalled and may not move, be sold or processed"),
    ),
    "TeaTraceLotAlreadyRecalled": (LotStateError, _m("lot {lot} is already recalled")),
    "TeaTraceYieldExceeded": (
        MassBalanceError,
        _m(
            "outputs of {outputGrams} g exceed the {allowedGrams} g allowed by the inputs "
            "({freshLeafGrams} g fresh leaf at the maximum yield, {madeTeaGrams} g made tea)"
        ),
    ),
    "TeaTraceZeroMass": (MassBalanceError, _m("record {dataHash} has zero grams")),
    "TeaTraceEmptyProcess": (
        MassBalanceError,
        _m("processing needs inputs and outputs (got {inputs} and {outputs})"),
    ),
    "TeaTraceFarmerInactive": (
        FarmerStateError,
        _m("farmer {farmer} is deactivated: reactivate it first"),
    ),
    "TeaTraceFarmerStatusUnchanged": (
        FarmerStateError,
        _m("farmer {farmer} already has active={active}"),
    ),
    "ConsentFarmerInactive": (FarmerStateError, _m("farmer {farmer} is deactivated")),
    "ConsentNotGranted": (
        ConsentError,
        _m("farmer {farmer} has no unexpired consent for lender {lender}"),
    ),
    "ConsentInvalidExpiry": (
        ConsentError,
        _m("consent expiry {expiresAt} must lie between {earliest} and {latest}"),
    ),
    "ConsentZeroLender": (ConsentError, _m("consent needs a lender address")),
    "ConsentSignatureExpired": (
        ConsentError,
        _m("the signed request expired at {deadline} (block time {blockTime}): sign it again"),
    ),
    "ConsentInvalidSignature": (
        ConsentError,
        _m("the signature is not farmer {farmer}'s wallet {wallet}'s over this request and nonce"),
    ),
    "TeaTraceUnknownGrade": (InvalidValueError, _m("grade {grade} is unknown (1..5)")),
    "TeaTraceHarvestInFuture": (
        InvalidValueError,
        _m("harvest {dataHash} is dated {pickedAt}, after the block time {blockTime}"),
    ),
    "TeaTraceInvalidYield": (InvalidValueError, _m("yield {bps} bp is outside (0, 10000]")),
    "TeaTraceZeroPlotArea": (InvalidValueError, _m("plot {plot} has zero area")),
    "TeaTraceInvalidRecipient": (
        InvalidValueError,
        _m("{to} is not another cooperative, processor or distributor"),
    ),
    "TeaTraceInvalidBuyer": (InvalidValueError, _m("{buyer} cannot buy: zero or the seller")),
    "TeaTraceZeroPrice": (InvalidValueError, _m("lot {lot} cannot be sold for zero")),
    "TeaTraceEmptyBatch": (InvalidValueError, _m("the batch is empty")),
    "TeaTraceZeroId": (InvalidValueError, _m("a farmer or plot id is zero")),
    "TeaTraceZeroAddress": (InvalidValueError, _m("an address is zero")),
    "TeaTraceLengthMismatch": (
        InvalidValueError,
        _m("expected {expected} values, got {actual}"),
    ),
}


def register_roles(names: dict[str, bytes]) -> None:
    """Teach messages the names of role hashes (done once by the service)."""
    _ROLE_NAMES.update({"0x" + value.hex(): name for name, value in names.items()})


def domain_error(exc: ContractRevertError) -> TraceabilityError:
    """The domain error for a decoded revert (ChainRejectedError if it has no mapping)."""
    cls, message = _MAPPING.get(exc.name, (ChainRejectedError, lambda _a: str(exc)))
    return cls(f"{message(exc.args_by_name)} [{exc.name}]", exc)
