"""Named errors of loan issuance, disbursement and sale settlement.

A contract's refusal is a ContractRuleError of its family (the contract, or the caller's access,
or the token, or a guard); `name` is the Solidity custom error's exact name, `values` its
arguments by name (also readable as attributes: `err.remaining`), and the message says what to
do, from the hint `_ERRORS` keeps for every custom error of MerchantRegistry, LoanFactory,
LoanEscrow and SaleSettlement (and the OpenZeppelin errors they can raise). `translate_reverts`
turns the chain layer's decoded reverts into these errors. Catch the family and check `name`:

    except EscrowError as exc:
        if exc.name == "EscrowCategoryBudgetExceeded": ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chain.errors import ContractRevertError
from lending.errors import LendingError

# ILoanEscrow.LoanStatus and OrderStatus, for messages (lending.loans.disbursement has the enums).
_LOAN_STATUS = (
    "uninitialized", "issued", "active", "overdue", "defaulted", "repaid", "written off",
    "cancelled",
)  # fmt: skip
_ORDER_STATUS = ("unknown", "pending", "released", "cancelled")


class LoanError(LendingError):
    """Root of the errors raised by loan disbursement, repayment and settlement."""


class LoanTermsError(LoanError):
    """Loan terms that the factory would refuse (caught before sending anything)."""


class SharesError(LoanError):
    """Farmer shares that cannot be computed or committed for a lot."""


class OrderNotExecutedError(LoanError):
    """A pipelined order was mined before its escrow existed and did nothing."""


def _render(value: Any) -> str:
    """Bytes as 0x-hex, the rest as str."""
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


class ContractRuleError(LoanError):
    """A contract refused a call: `name` is the Solidity custom error, `values` its arguments."""

    def __init__(self, name: str, values: dict[str, Any] | None = None) -> None:
        self.name = name
        self.values = dict(values or {})
        super().__init__(self._message())

    def _message(self) -> str:
        """`Name(arg=value, ...): hint`."""
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in self.values.items())
        _, hint = _ERRORS.get(self.name, (ContractRuleError, _NO_HINT))
        text = hint(self.values)
        return f"{self.name}({rendered}){': ' + text if text else ''}"

    def __getattr__(self, item: str) -> Any:
        """Error arguments as attributes: `err.remaining`."""
        values = self.__dict__.get("values", {})
        if item in values:
            return values[item]
        raise AttributeError(item)


class UnknownContractError(ContractRuleError):
    """A revert this module has no hint for (see `name` and `values`)."""

    def _message(self) -> str:
        """The name and arguments, marked unexpected."""
        return f"{self.name}{tuple(self.values.values())}: unexpected contract error"


# ---------------------------------------------------------------- families


class AccessError(ContractRuleError):
    """The caller lacks the role or relationship the function requires."""


class MerchantRegistryError(ContractRuleError):
    """MerchantRegistry refused a call."""


class LoanFactoryError(ContractRuleError):
    """LoanFactory refused to issue a loan."""


class EscrowError(ContractRuleError):
    """A LoanEscrow refused a call."""


class SettlementError(ContractRuleError):
    """SaleSettlement refused a call."""


class TokenError(ContractRuleError):
    """The payment token refused a transfer (balance, allowance or a failed call)."""


class GuardError(ContractRuleError):
    """A safety guard stopped the call (re-entry, double initialization, deployment)."""


class MerchantRegistryAccessError(AccessError, MerchantRegistryError):
    """MerchantRegistry refused the caller (e.g. a self-grant)."""


class LoanFactoryAccessError(AccessError, LoanFactoryError):
    """LoanFactory refused the caller (e.g. a self-grant)."""


class EscrowAccessError(AccessError, EscrowError):
    """A LoanEscrow refused the caller: not its factory, lender, borrower or confirmer."""


class SettlementAccessError(AccessError, SettlementError):
    """SaleSettlement refused the caller (e.g. a self-grant)."""


# ---------------------------------------------------------------- hints

_Hint = Callable[[dict[str, Any]], str]


def _m(template: str) -> _Hint:
    """A hint: `template` formatted with the error's arguments as hex/str."""
    return lambda a: template.format(**{k: _render(v) for k, v in a.items()})


def _status(template: str, names: tuple[str, ...]) -> _Hint:
    """A hint that also names the `status` argument (`{status_name}`)."""

    def hint(a: dict[str, Any]) -> str:
        """The template with the status by name (or its number if out of range)."""
        index = a.get("status", 0)
        name = names[index] if 0 <= index < len(names) else f"status {index}"
        return template.format(**{k: _render(v) for k, v in a.items()}, status_name=name)

    return hint


def _no_hint(_a: dict[str, Any]) -> str:
    """No hint: the name and arguments say it all."""
    return ""


_NO_HINT: _Hint = _no_hint

# Every contract error by its Solidity name: the family it is raised as, and its hint. The
# chain layer names a bare revert "Reverted", Error(string) "Error" and Panic(uint256) "Panic".
_ERRORS: dict[str, tuple[type[ContractRuleError], _Hint]] = {
    # generic reverts
    "Reverted": (TokenError, _m("check the payer's token balance and allowance")),
    "Error": (ContractRuleError, _m("{reason}")),
    "Panic": (
        ContractRuleError,
        _m("panic code {code}: this is a bug, please report it with the transaction"),
    ),
    # OpenZeppelin
    "AccessControlUnauthorizedAccount": (
        AccessError,
        _m("an admin must grant role {neededRole} to {account} first"),
    ),
    "AccessControlBadConfirmation": (AccessError, _m("an account can only renounce its own roles")),
    "ReentrancyGuardReentrantCall": (
        GuardError,
        _m("re-entry refused: a guarded function was called again before it finished"),
    ),
    "InvalidInitialization": (
        GuardError,
        _m("escrows are initialized once, by the factory, when they are created"),
    ),
    "NotInitializing": (GuardError, _NO_HINT),
    "FailedDeployment": (GuardError, _m("the escrow address is taken: use a new schedule hash")),
    "InsufficientBalance": (GuardError, _NO_HINT),
    "SafeERC20FailedOperation": (
        TokenError,
        _m("token {token} refused the operation: check balances and allowances"),
    ),
    "ERC20InsufficientBalance": (
        TokenError,
        _m("{sender} holds {balance} fen but {needed} are needed"),
    ),
    "ERC20InsufficientAllowance": (
        TokenError,
        _m("approve {spender} for at least {needed} fen (allowance is {allowance})"),
    ),
    "ERC20InvalidReceiver": (TokenError, _NO_HINT),
    "ERC20InvalidSender": (TokenError, _NO_HINT),
    "ERC20InvalidApprover": (TokenError, _NO_HINT),
    "ERC20InvalidSpender": (TokenError, _NO_HINT),
    # MerchantRegistry
    "MerchantRegistrySelfGrant": (
        MerchantRegistryAccessError,
        _m("another admin must grant roles to {account}"),
    ),
    "MerchantRegistryZeroAddress": (
        MerchantRegistryError,
        _m("pass a real merchant or admin address"),
    ),
    "MerchantRegistryEmptyCategoryName": (
        MerchantRegistryError,
        _m("name the category, e.g. 'fertilizer'"),
    ),
    "MerchantRegistryCategoryExists": (
        MerchantRegistryError,
        _m("category {category} exists already; approve merchants for it directly"),
    ),
    "MerchantRegistryUnknownCategory": (
        MerchantRegistryError,
        _m("register category {category} first"),
    ),
    "MerchantRegistryExpiryNotInFuture": (
        MerchantRegistryError,
        _m("choose an expiry after the block time {blockTime} (given {expiresAt})"),
    ),
    "MerchantRegistryNotApproved": (
        MerchantRegistryError,
        _m("{merchant} holds no live approval for {category}: nothing to revoke"),
    ),
    # LoanFactory
    "LoanFactorySelfGrant": (
        LoanFactoryAccessError,
        _m("another admin must grant roles to {account}"),
    ),
    "LoanFactoryZeroAddress": (LoanFactoryError, _m("set the farmer's wallet address")),
    "LoanFactoryZeroFarmerId": (LoanFactoryError, _m("use the farmer's pseudonymous TeaTrace id")),
    "LoanFactoryLenderIsBorrower": (
        LoanFactoryError,
        _m("lender {lender} cannot borrow from itself or act as the agent"),
    ),
    "LoanFactoryAgentIsFarmer": (
        LoanFactoryError,
        _m("leave the agent empty or name the cooperative, not the farmer"),
    ),
    "LoanFactoryZeroPrincipal": (LoanFactoryError, _m("the principal must be above zero fen")),
    "LoanFactoryAmountTooLarge": (LoanFactoryError, _m("{amount} fen exceeds the maximum {max}")),
    "LoanFactoryLengthMismatch": (
        LoanFactoryError,
        _m("give one budget per category ({categories} categories, {budgets} budgets)"),
    ),
    "LoanFactoryCategoryCount": (
        LoanFactoryError,
        _m("budget between 1 and {max} categories (got {count})"),
    ),
    "LoanFactoryCategoryOrder": (
        LoanFactoryError,
        _m("sort categories ascending without duplicates"),
    ),
    "LoanFactoryUnknownCategory": (
        LoanFactoryError,
        _m("register category {category} in the merchant registry first"),
    ),
    "LoanFactoryZeroBudget": (
        LoanFactoryError,
        _m("drop category {category} or give it a budget above zero"),
    ),
    "LoanFactoryBudgetSumMismatch": (
        LoanFactoryError,
        _m("budgets add up to {budgetSum} fen but the principal is {principal}"),
    ),
    "LoanFactoryDrawDeadlinePassed": (
        LoanFactoryError,
        _m("choose a draw deadline after the block time {blockTime}"),
    ),
    "LoanFactoryDueBeforeDrawDeadline": (
        LoanFactoryError,
        _m("the due date {dueDate} must not precede the draw deadline {drawDeadline}"),
    ),
    "LoanFactoryDueBelowPrincipal": (
        LoanFactoryError,
        _m("total due {totalDue} must cover the principal {principal}"),
    ),
    "LoanFactoryActiveLoanExists": (
        LoanFactoryError,
        _m("farmer {farmerId} has open loan {escrow}: repay, write off or cancel it first"),
    ),
    "LoanFactoryDuplicateLoan": (
        LoanFactoryError,
        _m("loan {escrow} already exists for this lender, farmer and schedule"),
    ),
    "LoanFactoryUnknownFarmer": (
        LoanFactoryError,
        _m("farmer {farmerId} is not registered in TeaTrace: the cooperative registers it first"),
    ),
    "LoanFactoryFarmerInactive": (
        LoanFactoryError,
        _m("farmer {farmerId} is deactivated in TeaTrace: no new loans"),
    ),
    "LoanFactoryNotFarmerWallet": (
        LoanFactoryError,
        _m("the loan names {given} but farmer {farmerId}'s TeaTrace wallet is {wallet}"),
    ),
    "LoanFactoryAcceptanceExpired": (
        LoanFactoryError,
        _m("the farmer's acceptance expired at {deadline}: ask the farmer to sign again"),
    ),
    "LoanFactoryAcceptanceNonce": (
        LoanFactoryError,
        _m("the acceptance carries nonce {given}, the farmer's next is {expected}: sign again"),
    ),
    "LoanFactoryInvalidAcceptance": (
        LoanFactoryError,
        _m("these terms were not signed by farmer {farmerId}'s wallet {wallet}"),
    ),
    "LoanFactoryNotFarmer": (
        LoanFactoryAccessError,
        _m("only farmer {farmerId}'s TeaTrace wallet may burn its nonce, not {caller}"),
    ),
    # LoanEscrow
    "EscrowNotFactory": (EscrowAccessError, _m("only the factory initializes escrows")),
    "EscrowNotLender": (EscrowAccessError, _m("loan {loanId}: {caller} is not the lender")),
    "EscrowNotOrderMerchant": (
        EscrowAccessError,
        _m("loan {loanId}: only order {orderId}'s merchant accepts it, not {caller}"),
    ),
    "EscrowWrongMode": (
        EscrowError,
        _m("loan {loanId}: merchants accept orders only in merchant-confirms mode"),
    ),
    "EscrowNotBorrower": (
        EscrowAccessError,
        _m("loan {loanId}: {caller} is neither the farmer nor the registered agent"),
    ),
    "EscrowNotConfirmer": (
        EscrowAccessError,
        _m("loan {loanId} order {orderId}: {caller} may not confirm under this loan's mode"),
    ),
    "EscrowNotCanceller": (
        EscrowAccessError,
        _m("loan {loanId} order {orderId}: {caller} may not cancel it (yet)"),
    ),
    "EscrowInvalidStatus": (
        EscrowError,
        _status("loan {loanId} is {status_name}, which does not allow this", _LOAN_STATUS),
    ),
    "EscrowDrawWindowClosed": (
        EscrowError,
        _m("loan {loanId}: the draw window closed at {drawDeadline} (now {blockTime})"),
    ),
    "EscrowDrawWindowOpen": (
        EscrowError,
        _m("loan {loanId}: unspent funds return only after {drawDeadline} (now {blockTime})"),
    ),
    "EscrowMerchantNotApproved": (
        EscrowError,
        _m("loan {loanId}: {merchant} is not approved for {category} (never, expired or revoked)"),
    ),
    "EscrowMerchantIsBorrower": (
        EscrowError,
        _m("loan {loanId}: loan money never goes to the farmer or agent ({merchant})"),
    ),
    "EscrowUnknownCategory": (
        EscrowError,
        _m("loan {loanId} has no budget for category {category}"),
    ),
    "EscrowCategoryBudgetExceeded": (
        EscrowError,
        _m("loan {loanId}: {requested} fen requested but only {remaining} left in {category}"),
    ),
    "EscrowZeroAmount": (EscrowError, _m("loan {loanId}: give an amount above zero fen")),
    "EscrowZeroInvoice": (
        EscrowError,
        _m("loan {loanId}: attach the hash of the merchant's invoice"),
    ),
    "EscrowInvoiceAlreadyUsed": (
        EscrowError,
        _m("loan {loanId}: invoice {invoiceHash} is already pending or paid"),
    ),
    "EscrowOrderNotPending": (
        EscrowError,
        _status("loan {loanId}: order {orderId} is {status_name}, not pending", _ORDER_STATUS),
    ),
    "EscrowNothingToReturn": (EscrowError, _m("loan {loanId}: nothing left to return")),
    "EscrowRepaymentExceedsOutstanding": (
        EscrowError,
        _m("loan {loanId}: only {outstanding} fen outstanding, {amount} offered"),
    ),
    "EscrowNothingOutstanding": (EscrowError, _m("loan {loanId}: nothing is outstanding")),
    "EscrowNotYetDefaultable": (
        EscrowError,
        _m("loan {loanId}: default may be declared after {defaultableAfter} (now {blockTime})"),
    ),
    "EscrowUnderfunded": (
        EscrowError,
        _m("loan {loanId}: escrow holds {balance} fen, principal is {principal}"),
    ),
    # SaleSettlement
    "SettlementSelfGrant": (
        SettlementAccessError,
        _m("another admin must grant roles to {account}"),
    ),
    "SettlementZeroAddress": (SettlementError, _NO_HINT),
    "SettlementUnknownLot": (SettlementError, _m("lot {lot} is not recorded in TeaTrace")),
    "SettlementUnknownFarmer": (
        SettlementError,
        _m("farmer {farmerId} is not registered in TeaTrace"),
    ),
    "SettlementLengthMismatch": (
        SettlementError,
        _m("give one weight per farmer ({farmers} farmers, {weights} weights)"),
    ),
    "SettlementFarmerCount": (SettlementError, _m("a lot takes 1 to {max} farmers (got {count})")),
    "SettlementFarmerOrder": (
        SettlementError,
        _m("sort farmer ids ascending and merge duplicates"),
    ),
    "SettlementInvalidWeight": (
        SettlementError,
        _m("farmer {farmerId}: weight {weight} must be 1..2**64-1 grams"),
    ),
    "SettlementSharesFrozen": (
        SettlementError,
        _m("lot {lot} already has {sales} settled sale(s); its shares are final"),
    ),
    "SettlementNoShares": (
        SettlementError,
        _m("commit lot {lot}'s farmer shares before settling a sale"),
    ),
    "SettlementSharesMismatch": (
        SettlementError,
        _m("lot {lot}: pass the committed farmer ids and weights (hash {committed})"),
    ),
    "SettlementZeroAmount": (SettlementError, _m("lot {lot}: the sale amount must be above zero")),
    "SettlementNotLotMaker": (
        SettlementAccessError,
        _m("lot {lot} was not made by {caller} from data hash {dataHash}: its maker commits"),
    ),
    "SettlementNotHolderOrBuyer": (
        SettlementAccessError,
        _m("lot {lot} is paid for by its holder {holder} or first buyer {buyer}, not {caller}"),
    ),
    "SettlementLotRecalled": (
        SettlementError,
        _m("lot {lot} is recalled: its proceeds are not settled through the ledger"),
    ),
    "SettlementNothingHeld": (SettlementError, _m("nothing is held for farmer {farmerId}")),
    "SettlementNoWallet": (
        SettlementError,
        _m("farmer {farmerId} has no wallet: the cooperative sets one in TeaTrace first"),
    ),
}


# ---------------------------------------------------------------- translation


def error_class(name: str) -> type[ContractRuleError] | None:
    """The family the contract error `name` is raised as, or None if it has no hint."""
    entry = _ERRORS.get(name)
    return entry[0] if entry else None


def known_error_names() -> frozenset[str]:
    """Names of every contract error with a hint here."""
    return frozenset(_ERRORS)


def from_revert(exc: ContractRevertError) -> ContractRuleError:
    """The named lending error for a decoded revert (UnknownContractError if unmapped)."""
    cls = error_class(exc.name) or UnknownContractError
    return cls(exc.name, exc.args_by_name)


def translated(exc: ContractRevertError) -> ContractRuleError:
    """from_revert with the decoded revert as its cause, as translate_reverts raises it (a
    batch's checks return their reverts instead of raising them)."""
    rule = from_revert(exc)
    rule.__cause__ = exc
    return rule


@contextmanager
def translate_reverts() -> Iterator[None]:
    """Re-raise decoded contract reverts as named lending errors (the original as __cause__)."""
    try:
        yield
    except ContractRevertError as exc:
        raise from_revert(exc) from exc
