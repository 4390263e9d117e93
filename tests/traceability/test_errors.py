"""Contract reverts become domain errors that keep name and values."""

from __future__ import annotations

from chain.errors import revert_class
from traceability.contracts import PROCESSOR_ROLE
from traceability.errors import (
    ChainRejectedError,
    LotStateError,
    MassBalanceError,
    TraceabilityError,
    UnauthorizedError,
    domain_error,
)


def revert(name: str, **args):
    return revert_class(name)(name, args)


def test_mapped_errors_keep_name_and_values_and_say_what_to_do():
    lot = b"\xab" * 32
    err = domain_error(revert("TeaTraceLotAlreadyConsumed", lot=lot))
    assert isinstance(err, LotStateError) and isinstance(err, TraceabilityError)
    assert err.name == "TeaTraceLotAlreadyConsumed"
    assert err.args_by_name == {"lot": lot}
    assert "0x" + "ab" * 32 in str(err) and "tealedger trace" in str(err)


def test_access_control_names_the_role():
    err = domain_error(
        revert("AccessControlUnauthorizedAccount", account="0xAb", neededRole=PROCESSOR_ROLE)
    )
    assert isinstance(err, UnauthorizedError)
    assert "PROCESSOR_ROLE" in str(err)


def test_yield_and_unknown_errors():
    err = domain_error(
        revert(
            "TeaTraceYieldExceeded", freshLeafGrams=1, madeTeaGrams=2, allowedGrams=3, outputGrams=4
        )
    )
    assert isinstance(err, MassBalanceError)
    other = domain_error(revert("SomethingElse", x=1))
    assert type(other) is ChainRejectedError and other.name == "SomethingElse"
