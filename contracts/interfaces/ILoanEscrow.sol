// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Types, errors, events and functions of a per-loan disbursement escrow.
/// @notice One escrow per loan, cloned by the LoanFactory. The lender's principal sits in it and
///         leaves it only (a) to merchants approved for a budgeted category, ordered by the
///         farmer or the farmer's cooperative (agent), or (b) back to the lender after the draw
///         window. There is no path that sends loan money to the farmer. Repayments from anyone
///         go straight to the lender. The debt is pro rata on what was actually paid to
///         merchants: floor(paid * totalDue / principal), so a loan nobody drew costs nothing
///         and unspent principal is never owed. Every loan was accepted by the farmer's wallet
///         (EIP-712, checked by the factory when issuing).
interface ILoanEscrow {
    /// @notice Life of a loan. Open: Issued, Active, Overdue, Defaulted. Closed: the rest.
    enum LoanStatus {
        None, // not initialized
        Issued, // created, awaiting the lender's funding
        Active, // funded
        Overdue, // amount outstanding past dueDate + graceDays
        Defaulted, // declared by the lender past dueDate + graceDays + defaultDays
        Repaid, // nothing outstanding and nothing more can be drawn
        WrittenOff, // closed by the lender after default
        Cancelled // withdrawn by the lender before funding
    }

    /// @notice When a merchant payment leaves the escrow.
    enum ConfirmationMode {
        Immediate, // paid when ordered
        MerchantConfirms, // reserved when ordered, paid when the merchant confirms delivery
        BorrowerConfirms // reserved when ordered, paid when the farmer (or agent) confirms receipt
    }

    /// @notice State of a reserved payment order (Immediate orders are never stored).
    enum OrderStatus {
        None,
        Pending,
        Released,
        Cancelled,
        Accepted // MerchantConfirms: the merchant took the order; the borrower may no longer cancel
    }

    /// @notice The lender's decision, as passed to the factory.
    struct LoanParams {
        bytes32 farmerId; // pseudonymous farmer id (as in TeaTrace)
        address farmer; // the farmer's ordering/confirming wallet
        address agent; // the cooperative acting for the farmer, or zero
        uint256 principal; // fen; equals the sum of `budgets`
        bytes32[] categories; // strictly ascending registered category ids
        uint256[] budgets; // fen per category, each > 0
        bytes32 scheduleHash; // hash of the off-chain repayment schedule
        bytes32 disclosureHash; // hash of the APR disclosure the farmer signed
        uint64 drawDeadline; // orders allowed until this unix time (inclusive)
        uint256 totalDue; // fen due if the whole principal is drawn: principal + interest
        uint64 dueDate; // final due date, unix time, >= drawDeadline
        uint16 graceDays; // overdue after dueDate + graceDays
        uint16 defaultDays; // default may be declared graceDays + defaultDays after dueDate
        ConfirmationMode mode;
        uint16 aprBps; // the disclosed APR in basis points (what the farmer was shown)
    }

    /// @notice The fixed terms of the loan.
    struct Terms {
        uint256 loanId;
        bytes32 farmerId;
        address lender;
        address farmer;
        address agent;
        uint256 principal;
        uint256 totalDue;
        uint64 drawDeadline;
        uint64 dueDate;
        uint16 graceDays;
        uint16 defaultDays;
        ConfirmationMode mode;
    }

    /// @notice Money movements so far, in fen.
    struct Accounting {
        uint256 funded; // principal once funded, else 0
        uint256 paid; // released to merchants
        uint256 reserved; // held for pending orders
        uint256 returned; // sent back to the lender unspent
        uint256 available; // funded - paid - reserved - returned: still orderable
        uint256 repaid; // repayments forwarded to the lender
        uint256 amountDue; // floor(paid * totalDue / principal): interest pro rata on what was drawn
        uint256 outstanding; // amountDue - repaid
    }

    /// @notice One category's budget and what is committed against it (reserved + paid).
    struct Budget {
        uint128 budget;
        uint128 committed;
    }

    /// @notice A reserved payment order (one storage slot + two).
    struct Order {
        address merchant;
        uint88 amount; // <= principal <= type(uint88).max (checked by the factory)
        OrderStatus status;
        bytes32 category;
        bytes32 invoiceHash;
    }

    /// @notice Only the factory initializes a clone.
    error EscrowNotFactory(address caller);
    /// @notice Only the lender may do this.
    error EscrowNotLender(uint256 loanId, address caller);
    /// @notice Only the farmer or the registered agent may do this.
    error EscrowNotBorrower(uint256 loanId, address caller);
    /// @notice `caller` may not confirm this order under the loan's confirmation mode.
    error EscrowNotConfirmer(uint256 loanId, uint256 orderId, address caller);
    /// @notice `caller` may not cancel this order (yet).
    error EscrowNotCanceller(uint256 loanId, uint256 orderId, address caller);
    /// @notice The loan's status does not allow this.
    error EscrowInvalidStatus(uint256 loanId, LoanStatus status);
    /// @notice Orders are accepted only until the draw deadline.
    error EscrowDrawWindowClosed(uint256 loanId, uint256 drawDeadline, uint256 blockTime);
    /// @notice Unspent funds go back only after the draw deadline.
    error EscrowDrawWindowOpen(uint256 loanId, uint256 drawDeadline, uint256 blockTime);
    /// @notice The merchant is not approved for the category now (never, expired or revoked).
    error EscrowMerchantNotApproved(uint256 loanId, address merchant, bytes32 category);
    /// @notice The farmer, the agent or the zero address cannot be paid as a merchant.
    error EscrowMerchantIsBorrower(uint256 loanId, address merchant);
    /// @notice The loan has no budget for this category.
    error EscrowUnknownCategory(uint256 loanId, bytes32 category);
    /// @notice The order exceeds what is left of the category's budget.
    error EscrowCategoryBudgetExceeded(
        uint256 loanId, bytes32 category, uint256 remaining, uint256 requested
    );
    /// @notice An amount of zero fen was given.
    error EscrowZeroAmount(uint256 loanId);
    /// @notice An order needs a non-zero invoice hash.
    error EscrowZeroInvoice(uint256 loanId);
    /// @notice This invoice was already ordered on this loan (pending or paid).
    error EscrowInvoiceAlreadyUsed(uint256 loanId, bytes32 invoiceHash);
    /// @notice No pending order with this id.
    error EscrowOrderNotPending(uint256 loanId, uint256 orderId, OrderStatus status);
    /// @notice Nothing is left to return to the lender.
    error EscrowNothingToReturn(uint256 loanId);
    /// @notice A repayment may not exceed what is outstanding: a loan is never overpaid.
    error EscrowRepaymentExceedsOutstanding(uint256 loanId, uint256 outstanding, uint256 amount);
    /// @notice Nothing is outstanding.
    error EscrowNothingOutstanding(uint256 loanId);
    /// @notice Default may be declared only after dueDate + graceDays + defaultDays.
    error EscrowNotYetDefaultable(uint256 loanId, uint256 defaultableAfter, uint256 blockTime);
    /// @notice Only the order's merchant may accept it.
    error EscrowNotOrderMerchant(uint256 loanId, uint256 orderId, address caller);
    /// @notice Orders are accepted by merchants only in MerchantConfirms mode.
    error EscrowWrongMode(uint256 loanId, ConfirmationMode mode);
    /// @notice The factory's funding did not arrive.
    error EscrowUnderfunded(uint256 loanId, uint256 balance, uint256 principal);

    /// @notice The loan's fixed terms and document hashes were recorded.
    event LoanTermsRecorded(
        uint256 indexed loanId,
        bytes32 indexed farmerId,
        bytes32 scheduleHash,
        bytes32 disclosureHash,
        uint256 totalDue,
        uint256 dueDate,
        uint256 drawDeadline,
        uint256 graceDays,
        uint256 defaultDays,
        ConfirmationMode mode
    );
    /// @notice A category budget was set.
    event LoanBudgetSet(uint256 indexed loanId, bytes32 indexed category, uint256 amount);
    /// @notice The loan moved from one status to another.
    event LoanStatusChanged(uint256 indexed loanId, LoanStatus indexed previous, LoanStatus indexed current);
    /// @notice The lender's principal arrived in the escrow.
    event LoanFunded(uint256 indexed loanId, address indexed lender, uint256 amount);
    /// @notice A payment was ordered and reserved, awaiting confirmation.
    event PaymentOrdered(
        uint256 indexed loanId,
        uint256 indexed orderId,
        address indexed merchant,
        bytes32 category,
        uint256 amount,
        bytes32 invoiceHash
    );
    /// @notice Loan money was paid to a merchant.
    event LoanDisbursed(
        uint256 indexed loanId,
        address indexed merchant,
        bytes32 indexed category,
        uint256 amount,
        bytes32 invoiceHash,
        uint256 orderId
    );
    /// @notice A reserved order was cancelled; its amount is orderable again.
    event PaymentCancelled(
        uint256 indexed loanId, uint256 indexed orderId, address indexed canceller, uint256 amount
    );
    /// @notice The merchant accepted a reserved order (MerchantConfirms): the borrower can no
    ///         longer cancel it until DELIVERY_PERIOD has passed.
    event PaymentAccepted(uint256 indexed loanId, uint256 indexed orderId, address indexed merchant);
    /// @notice Unspent principal went back to the lender.
    event LoanUnspentReturned(uint256 indexed loanId, address indexed lender, uint256 amount);
    /// @notice A repayment was forwarded to the lender.
    event LoanRepaymentReceived(
        uint256 indexed loanId, address indexed payer, uint256 amount, uint256 outstanding
    );

    /// @notice Set up a fresh clone. Called once, by the factory, in the issuing transaction.
    /// @dev Emits LoanTermsRecorded, LoanBudgetSet per category, LoanStatusChanged and, when
    ///      `funded`, LoanFunded.
    /// @param loanId The factory's loan number.
    /// @param lender The issuing lender.
    /// @param p The validated loan parameters.
    /// @param funded True if the factory already transferred the principal into the clone.
    /// @param acceptedDigest The EIP-712 digest of the terms the farmer's wallet signed.
    function initialize(
        uint256 loanId,
        address lender,
        LoanParams calldata p,
        bool funded,
        bytes32 acceptedDigest
    ) external;

    /// @notice Fund an issued loan: pull the principal from the lender.
    /// @dev Only the lender; status Issued; before the draw deadline. The lender approves this
    ///      escrow for `principal` first. Emits LoanFunded and LoanStatusChanged.
    function fund() external;

    /// @notice Withdraw an unfunded loan.
    /// @dev Status Issued; the lender at any time, anyone once the draw deadline has passed (an
    ///      unfunded loan can no longer be drawn and must not block the farmer). Emits
    ///      LoanStatusChanged (Cancelled).
    function cancelLoan() external;

    /// @notice Order a payment to an approved merchant from a category budget.
    /// @dev Only the farmer or agent; status Active; until the draw deadline; merchant approved
    ///      for `category` now and neither farmer nor agent; amount within the category's
    ///      remaining budget; invoice not used on this loan. Immediate mode pays at once
    ///      (LoanDisbursed); otherwise the amount is reserved (PaymentOrdered).
    /// @param merchant The merchant's payout address.
    /// @param category A budgeted category id.
    /// @param amount Fen, > 0.
    /// @param invoiceHash Hash of the merchant's invoice, non-zero.
    /// @return orderId Sequential per loan, from 1.
    function orderPayment(address merchant, bytes32 category, uint256 amount, bytes32 invoiceHash)
        external
        returns (uint256 orderId);

    /// @notice Release a reserved order to its merchant.
    /// @dev MerchantConfirms: only the order's merchant (delivery). BorrowerConfirms: only the
    ///      farmer or agent (receipt). The merchant must still be approved for the category.
    ///      Emits LoanDisbursed.
    /// @param orderId A pending order.
    function confirmPayment(uint256 orderId) external;

    /// @notice The merchant takes a reserved order (MerchantConfirms mode), before delivering:
    ///         from then on the borrower cannot cancel it (no front-running the confirmation)
    ///         until DELIVERY_PERIOD has passed without a confirmation.
    /// @dev Only the order's merchant; the order Pending. Emits PaymentAccepted.
    /// @param orderId A pending order.
    function acceptOrder(uint256 orderId) external;

    /// @notice Cancel a reserved order; its amount becomes orderable (or returnable) again.
    /// @dev The order's merchant at any time; the farmer or agent while the order is Pending, or
    ///      once DELIVERY_PERIOD has passed since the merchant accepted it; the lender once
    ///      CONFIRMATION_PERIOD has passed after the draw deadline. Emits PaymentCancelled.
    /// @param orderId A pending or accepted order.
    function cancelPayment(uint256 orderId) external;

    /// @notice Send every unspent, unreserved fen back to the lender.
    /// @dev Anyone, after the draw deadline; the money goes only to the lender.
    ///      Emits LoanUnspentReturned (and LoanStatusChanged if the loan closes).
    /// @return amount Fen returned.
    function returnUnspent() external returns (uint256 amount);

    /// @notice Repay `amount` fen on behalf of the loan; the tokens go from the caller straight to
    ///         the lender (the caller approves this escrow first).
    /// @dev Anyone; status Active, Overdue or Defaulted; amount <= outstanding (excess is refused,
    ///      never kept). Emits LoanRepaymentReceived (and LoanStatusChanged when it closes).
    /// @param amount Fen, > 0.
    function repay(uint256 amount) external;

    /// @notice Apply time-driven status changes: Issued -> Cancelled past the draw deadline
    ///         (never funded); Active -> Overdue past dueDate + graceDays with an amount
    ///         outstanding; Active/Overdue -> Repaid when nothing is outstanding, the draw window
    ///         is over and nothing is reserved.
    /// @dev Anyone. Emits LoanStatusChanged when the status changes.
    /// @return status The status after the refresh.
    function refreshStatus() external returns (LoanStatus status);

    /// @notice Declare the loan in default.
    /// @dev Only the lender; Active or Overdue; an amount outstanding; after
    ///      dueDate + graceDays + defaultDays. Emits LoanStatusChanged.
    function declareDefault() external;

    /// @notice Write a defaulted loan off (it closes; later repayments are refused).
    /// @dev Only the lender; status Defaulted. Emits LoanStatusChanged.
    function writeOff() external;

    /// @notice The loan's fixed terms.
    function terms() external view returns (Terms memory);

    /// @notice Money movements so far.
    function accounting() external view returns (Accounting memory);

    /// @notice What the farmer accepted: the EIP-712 digest the farmer's wallet signed, the
    ///         disclosure's hash and the disclosed APR. Anyone recomputes the digest from the
    ///         terms they were shown (LoanFactory.acceptanceDigest) and compares.
    function acceptance() external view returns (bytes32 digest, bytes32 disclosureHash, uint256 aprBps);

    /// @notice When the merchant accepted order `orderId` (0 if never).
    /// @param orderId The order's number.
    function orderAcceptedAt(uint256 orderId) external view returns (uint256);

    /// @notice The stored status (see refreshStatus for time-driven changes).
    function status() external view returns (LoanStatus);

    /// @notice True while the loan is Issued, Active, Overdue or Defaulted, and not merely
    ///         waiting for a refresh to close it: an Issued loan past its draw deadline (never
    ///         funded) and a loan owing nothing past its draw deadline with nothing reserved are
    ///         closed (a new lender may then lend to the farmer).
    function isOpen() external view returns (bool);

    /// @notice Fen that may be repaid now (0 unless Active, Overdue or Defaulted).
    function outstanding() external view returns (uint256);

    /// @notice A category's budget and committed amount (both zero if not budgeted).
    /// @param category The category id.
    function budgetOf(bytes32 category) external view returns (Budget memory);

    /// @notice A reserved order (status None for unknown ids and Immediate-mode payments).
    /// @param orderId The order's number.
    function order(uint256 orderId) external view returns (Order memory);

    /// @notice Number of orders placed (all modes).
    function orderCount() external view returns (uint256);

    /// @notice True if `invoiceHash` is pending or paid on this loan.
    /// @param invoiceHash The invoice hash.
    function invoiceUsed(bytes32 invoiceHash) external view returns (bool);

    /// @notice The factory, payment token and merchant registry this escrow is bound to.
    function bindings() external view returns (address factory, address token, address registry);
}
