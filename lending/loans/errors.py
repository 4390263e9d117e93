"""Named errors of loan issuance, disbursement and sale settlement.

Every custom error of MerchantRegistry, LoanFactory, LoanEscrow and SaleSettlement (and the
OpenZeppelin errors they can raise) has a class here with the contract error's exact name; its
`values` hold the error's arguments by name and its message says what to do. `translate_reverts`
turns the chain layer's decoded reverts into these classes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from chain.errors import ContractRevertError
from lending.errors import LendingError

_BY_NAME: dict[str, type[ContractRuleError]] = {}
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


def _name(names: tuple[str, ...], index: int) -> str:
    """The name at `index`, or the number if out of range."""
    return names[index] if 0 <= index < len(names) else f"status {index}"


def _render(value: Any) -> str:
    """Bytes as 0x-hex, the rest as str."""
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


class ContractRuleError(LoanError):
    """A contract refused a call; the class name is the Solidity custom error's name."""

    hint: ClassVar[str] = ""
    family: ClassVar[bool] = True  # grouping classes are not contract errors

    contract_name: ClassVar[str] = ""  # the contract error's name when it differs

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Register every concrete error class under its contract error name."""
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("family", False):
            _BY_NAME[cls.__dict__.get("contract_name") or cls.__name__] = cls

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.name = self.contract_name or type(self).__name__
        self.values = dict(values or {})
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in self.values.items())
        shown = {k: _render(v) for k, v in self.values.items()} | self._extras()
        hint = self.hint.format(**shown) if self.hint else ""
        super().__init__(f"{self.name}({rendered}){': ' + hint if hint else ''}")

    def _extras(self) -> dict[str, str]:
        """Extra fields for the hint (e.g. status names)."""
        return {}

    def __getattr__(self, item: str) -> Any:
        """Error arguments as attributes: `err.remaining`."""
        values = self.__dict__.get("values", {})
        if item in values:
            return values[item]
        raise AttributeError(item)


class UnknownContractError(ContractRuleError):
    """A revert this module has no class for (see `name` and `values`)."""

    family = True

    def __init__(self, name: str, values: dict[str, Any] | None = None) -> None:
        super().__init__(values)
        self.name = name
        self.args = (f"{name}{tuple(self.values.values())}: unexpected contract error",)


# ---------------------------------------------------------------- families


class AccessError(ContractRuleError):
    """The caller lacks the role or relationship the function requires."""

    family = True


class MerchantRegistryError(ContractRuleError):
    """MerchantRegistry refused a call."""

    family = True


class LoanFactoryError(ContractRuleError):
    """LoanFactory refused to issue a loan."""

    family = True


class EscrowError(ContractRuleError):
    """A LoanEscrow refused a call."""

    family = True


class SettlementError(ContractRuleError):
    """SaleSettlement refused a call."""

    family = True


class TokenError(ContractRuleError):
    """The payment token refused a transfer (balance, allowance or a failed call)."""

    family = True


class GuardError(ContractRuleError):
    """A safety guard stopped the call (re-entry, double initialization, deployment)."""

    family = True


# ---------------------------------------------------------------- generic reverts


class RevertedWithoutReason(TokenError):
    """A call reverted with no data: usually a token without custom errors refusing a transfer."""

    contract_name = "Reverted"
    hint = "check the payer's token balance and allowance"


class RevertedWithReason(ContractRuleError):
    """A call reverted with Error(string) (older tokens use `require` messages)."""

    contract_name = "Error"
    hint = "{reason}"


class ContractPanic(ContractRuleError):
    """A Panic(uint256): an assertion, overflow or similar bug; report it."""

    contract_name = "Panic"
    hint = "panic code {code}: this is a bug, please report it with the transaction"


# ---------------------------------------------------------------- OpenZeppelin


class AccessControlUnauthorizedAccount(AccessError):
    """The caller lacks a role."""

    hint = "an admin must grant role {neededRole} to {account} first"


class AccessControlBadConfirmation(AccessError):
    """renounceRole was called for another account."""

    hint = "an account can only renounce its own roles"


class ReentrancyGuardReentrantCall(GuardError):
    """A guarded function was re-entered during a token transfer."""

    hint = "re-entry refused: a guarded function was called again before it finished"


class InvalidInitialization(GuardError):
    """An escrow (or the implementation) was initialized twice."""

    hint = "escrows are initialized once, by the factory, when they are created"


class NotInitializing(GuardError):
    """An initializer-only function ran outside initialization."""


class FailedDeployment(GuardError):
    """The clone could not be created."""

    hint = "the escrow address is taken: use a new schedule hash"


class InsufficientBalance(GuardError):
    """The factory lacked ether for a clone deployment with value."""


class SafeERC20FailedOperation(TokenError):
    """The token's transfer, transferFrom or approve failed or returned false."""

    hint = "token {token} refused the operation: check balances and allowances"


class ERC20InsufficientBalance(TokenError):
    """The payer's token balance is too small."""

    hint = "{sender} holds {balance} fen but {needed} are needed"


class ERC20InsufficientAllowance(TokenError):
    """The payer did not approve enough."""

    hint = "approve {spender} for at least {needed} fen (allowance is {allowance})"


class ERC20InvalidReceiver(TokenError):
    """Tokens cannot go to this receiver."""


class ERC20InvalidSender(TokenError):
    """Tokens cannot come from this sender."""


class ERC20InvalidApprover(TokenError):
    """Approvals cannot come from this account."""


class ERC20InvalidSpender(TokenError):
    """Approvals cannot go to this spender."""


# ---------------------------------------------------------------- MerchantRegistry


class MerchantRegistrySelfGrant(AccessError, MerchantRegistryError):
    """An account tried to grant a role to itself."""

    hint = "another admin must grant roles to {account}"


class MerchantRegistryZeroAddress(MerchantRegistryError):
    """The zero address was given."""

    hint = "pass a real merchant or admin address"


class MerchantRegistryEmptyCategoryName(MerchantRegistryError):
    """A category name was empty."""

    hint = "name the category, e.g. 'fertilizer'"


class MerchantRegistryCategoryExists(MerchantRegistryError):
    """The category is already registered."""

    hint = "category {category} exists already; approve merchants for it directly"


class MerchantRegistryUnknownCategory(MerchantRegistryError):
    """The category was never registered."""

    hint = "register category {category} first"


class MerchantRegistryExpiryNotInFuture(MerchantRegistryError):
    """The approval would already be expired."""

    hint = "choose an expiry after the block time {blockTime} (given {expiresAt})"


class MerchantRegistryNotApproved(MerchantRegistryError):
    """The merchant is not currently approved for the category."""

    hint = "{merchant} holds no live approval for {category}: nothing to revoke"


# ---------------------------------------------------------------- LoanFactory


class LoanFactorySelfGrant(AccessError, LoanFactoryError):
    """An account tried to grant a role to itself."""

    hint = "another admin must grant roles to {account}"


class LoanFactoryZeroAddress(LoanFactoryError):
    """The zero address was given."""

    hint = "set the farmer's wallet address"


class LoanFactoryZeroFarmerId(LoanFactoryError):
    """A zero farmer id was given."""

    hint = "use the farmer's pseudonymous TeaTrace id"


class LoanFactoryLenderIsBorrower(LoanFactoryError):
    """The lender is the farmer or the agent."""

    hint = "lender {lender} cannot borrow from itself or act as the agent"


class LoanFactoryAgentIsFarmer(LoanFactoryError):
    """The agent is the farmer."""

    hint = "leave the agent empty or name the cooperative, not the farmer"


class LoanFactoryZeroPrincipal(LoanFactoryError):
    """Principal of zero."""

    hint = "the principal must be above zero fen"


class LoanFactoryAmountTooLarge(LoanFactoryError):
    """An amount exceeds what the escrow stores."""

    hint = "{amount} fen exceeds the maximum {max}"


class LoanFactoryLengthMismatch(LoanFactoryError):
    """Categories and budgets differ in length."""

    hint = "give one budget per category ({categories} categories, {budgets} budgets)"


class LoanFactoryCategoryCount(LoanFactoryError):
    """Too few or too many categories."""

    hint = "budget between 1 and {max} categories (got {count})"


class LoanFactoryCategoryOrder(LoanFactoryError):
    """Categories are not strictly ascending."""

    hint = "sort categories ascending without duplicates"


class LoanFactoryUnknownCategory(LoanFactoryError):
    """A budget names an unregistered category."""

    hint = "register category {category} in the merchant registry first"


class LoanFactoryZeroBudget(LoanFactoryError):
    """A category budget of zero."""

    hint = "drop category {category} or give it a budget above zero"


class LoanFactoryBudgetSumMismatch(LoanFactoryError):
    """Budgets do not add up to the principal."""

    hint = "budgets add up to {budgetSum} fen but the principal is {principal}"


class LoanFactoryDrawDeadlinePassed(LoanFactoryError):
    """The draw deadline is not in the future."""

    hint = "choose a draw deadline after the block time {blockTime}"


class LoanFactoryDueBeforeDrawDeadline(LoanFactoryError):
    """The due date precedes the draw deadline."""

    hint = "the due date {dueDate} must not precede the draw deadline {drawDeadline}"


class LoanFactoryDueBelowPrincipal(LoanFactoryError):
    """The total due is below the principal."""

    hint = "total due {totalDue} must cover the principal {principal}"


class LoanFactoryActiveLoanExists(LoanFactoryError):
    """The farmer already has an open loan."""

    hint = "farmer {farmerId} has open loan {escrow}: repay, write off or cancel it first"


class LoanFactoryDuplicateLoan(LoanFactoryError):
    """The same loan was issued already."""

    hint = "loan {escrow} already exists for this lender, farmer and schedule"


# ---------------------------------------------------------------- LoanEscrow


class EscrowNotFactory(AccessError, EscrowError):
    """Someone other than the factory tried to initialize an escrow."""

    hint = "only the factory initializes escrows"


class EscrowNotLender(AccessError, EscrowError):
    """Only the lender may do this."""

    hint = "loan {loanId}: {caller} is not the lender"


class EscrowNotBorrower(AccessError, EscrowError):
    """Only the farmer or the agent may do this."""

    hint = "loan {loanId}: {caller} is neither the farmer nor the registered agent"


class EscrowNotConfirmer(AccessError, EscrowError):
    """The caller may not confirm this order."""

    hint = "loan {loanId} order {orderId}: {caller} may not confirm under this loan's mode"


class EscrowNotCanceller(AccessError, EscrowError):
    """The caller may not cancel this order (yet)."""

    hint = "loan {loanId} order {orderId}: {caller} may not cancel it (yet)"


class EscrowInvalidStatus(EscrowError):
    """The loan's status does not allow this."""

    hint = "loan {loanId} is {status_name}, which does not allow this"

    def _extras(self) -> dict[str, str]:
        """The status by name."""
        return {"status_name": _name(_LOAN_STATUS, self.values.get("status", 0))}


class EscrowDrawWindowClosed(EscrowError):
    """The draw window is over."""

    hint = "loan {loanId}: the draw window closed at {drawDeadline} (now {blockTime})"


class EscrowDrawWindowOpen(EscrowError):
    """The draw window is still open."""

    hint = "loan {loanId}: unspent funds return only after {drawDeadline} (now {blockTime})"


class EscrowMerchantNotApproved(EscrowError):
    """The merchant is not approved for the category now."""

    hint = "loan {loanId}: {merchant} is not approved for {category} (never, expired or revoked)"


class EscrowMerchantIsBorrower(EscrowError):
    """The payee is the farmer, the agent or zero."""

    hint = "loan {loanId}: loan money never goes to the farmer or agent ({merchant})"


class EscrowUnknownCategory(EscrowError):
    """The loan has no budget for the category."""

    hint = "loan {loanId} has no budget for category {category}"


class EscrowCategoryBudgetExceeded(EscrowError):
    """The order exceeds the category's remaining budget."""

    hint = "loan {loanId}: {requested} fen requested but only {remaining} left in {category}"


class EscrowZeroAmount(EscrowError):
    """An amount of zero."""

    hint = "loan {loanId}: give an amount above zero fen"


class EscrowZeroInvoice(EscrowError):
    """No invoice hash."""

    hint = "loan {loanId}: attach the hash of the merchant's invoice"


class EscrowInvoiceAlreadyUsed(EscrowError):
    """The invoice was ordered already on this loan."""

    hint = "loan {loanId}: invoice {invoiceHash} is already pending or paid"


class EscrowOrderNotPending(EscrowError):
    """No pending order with this id."""

    hint = "loan {loanId}: order {orderId} is {status_name}, not pending"

    def _extras(self) -> dict[str, str]:
        """The order status by name."""
        return {"status_name": _name(_ORDER_STATUS, self.values.get("status", 0))}


class EscrowNothingToReturn(EscrowError):
    """No unspent, unreserved funds left."""

    hint = "loan {loanId}: nothing left to return"


class EscrowRepaymentExceedsOutstanding(EscrowError):
    """A repayment above what is outstanding."""

    hint = "loan {loanId}: only {outstanding} fen outstanding, {amount} offered"


class EscrowNothingOutstanding(EscrowError):
    """Nothing is outstanding."""

    hint = "loan {loanId}: nothing is outstanding"


class EscrowNotYetDefaultable(EscrowError):
    """Too early to declare default."""

    hint = "loan {loanId}: default may be declared after {defaultableAfter} (now {blockTime})"


class EscrowUnderfunded(EscrowError):
    """The factory's funding did not arrive."""

    hint = "loan {loanId}: escrow holds {balance} fen, principal is {principal}"


# ---------------------------------------------------------------- SaleSettlement


class SettlementSelfGrant(AccessError, SettlementError):
    """An account tried to grant a role to itself."""

    hint = "another admin must grant roles to {account}"


class SettlementZeroAddress(SettlementError):
    """The zero address was given."""


class SettlementUnknownLot(SettlementError):
    """TeaTrace knows no such lot."""

    hint = "lot {lot} is not recorded in TeaTrace"


class SettlementUnknownFarmer(SettlementError):
    """TeaTrace knows no such farmer."""

    hint = "farmer {farmerId} is not registered in TeaTrace"


class SettlementLengthMismatch(SettlementError):
    """Farmer ids and weights differ in length."""

    hint = "give one weight per farmer ({farmers} farmers, {weights} weights)"


class SettlementFarmerCount(SettlementError):
    """Too few or too many farmers."""

    hint = "a lot takes 1 to {max} farmers (got {count})"


class SettlementFarmerOrder(SettlementError):
    """Farmer ids not strictly ascending."""

    hint = "sort farmer ids ascending and merge duplicates"


class SettlementInvalidWeight(SettlementError):
    """A weight of zero or above 2**64 - 1 grams."""

    hint = "farmer {farmerId}: weight {weight} must be 1..2**64-1 grams"


class SettlementSharesFrozen(SettlementError):
    """The lot's shares are frozen by a settled sale."""

    hint = "lot {lot} already has {sales} settled sale(s); its shares are final"


class SettlementNoShares(SettlementError):
    """No shares committed for the lot."""

    hint = "commit lot {lot}'s farmer shares before settling a sale"


class SettlementSharesMismatch(SettlementError):
    """The given lists are not the committed ones."""

    hint = "lot {lot}: pass the committed farmer ids and weights (hash {committed})"


class SettlementZeroAmount(SettlementError):
    """A sale of zero fen."""

    hint = "lot {lot}: the sale amount must be above zero"


class SettlementNothingHeld(SettlementError):
    """Nothing is held for the farmer."""

    hint = "nothing is held for farmer {farmerId}"


class SettlementNoWallet(SettlementError):
    """The farmer has no wallet yet."""

    hint = "farmer {farmerId} has no wallet: the cooperative sets one in TeaTrace first"


# ---------------------------------------------------------------- translation


def error_class(name: str) -> type[ContractRuleError] | None:
    """The class for the contract error `name`, or None."""
    return _BY_NAME.get(name)


def known_error_names() -> frozenset[str]:
    """Names of every contract error with a class here."""
    return frozenset(_BY_NAME)


def from_revert(exc: ContractRevertError) -> ContractRuleError:
    """The named lending error for a decoded revert (UnknownContractError if unmapped)."""
    cls = _BY_NAME.get(exc.name)
    if cls is None:
        return UnknownContractError(exc.name, exc.args_by_name)
    return cls(exc.args_by_name)


@contextmanager
def translate_reverts() -> Iterator[None]:
    """Re-raise decoded contract reverts as named lending errors (the original as __cause__)."""
    try:
        yield
    except ContractRevertError as exc:
        raise from_revert(exc) from exc
