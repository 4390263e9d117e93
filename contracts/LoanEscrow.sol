// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ILoanEscrow} from "./interfaces/ILoanEscrow.sol";
import {IMerchantRegistry} from "./interfaces/IMerchantRegistry.sol";

/// @title LoanEscrow
/// @notice One loan's purpose-bound money: paid only to approved merchants per category budget,
///         returned unspent to the lender after the draw window, never to the farmer.
/// @dev Deployed once as the implementation; every loan is an EIP-1167 clone initialized by the
///      factory. Factory, token and registry are immutables of the implementation, so clones
///      share them at no storage cost. Invariants (docs/invariants.md):
///      1. balance = funded - paid - returned (reserved funds are still in the escrow).
///      2. paid + reserved + returned <= funded; per category, committed <= budget.
///      3. Every fen paid went to a merchant approved for the order's category at that moment,
///         never to the farmer or the agent.
///      4. repaid <= amountDue = floor(paid * totalDue / principal) <= totalDue: never repaid
///         beyond due, and nothing is owed on what was never drawn.
///      5. Every status change emits LoanStatusChanged; closed loans never reopen.
///      6. Every state-changing function is nonReentrant.
contract LoanEscrow is ILoanEscrow, Initializable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice After the draw deadline plus this period the lender may cancel pending orders,
    ///         so an unresponsive merchant or farmer cannot lock the lender's money forever.
    uint256 public constant CONFIRMATION_PERIOD = 30 days;
    /// @notice After a merchant accepted an order, the borrower may cancel it only once this
    ///         period has passed without a confirmation (the merchant did not deliver).
    uint256 public constant DELIVERY_PERIOD = 14 days;

    address private immutable _FACTORY;
    IERC20 private immutable _TOKEN;
    IMerchantRegistry private immutable _REGISTRY;

    // Packed: 160 + 64 + 8 + 8 + 16 bits.
    address private _lender;
    uint64 private _drawDeadline;
    LoanStatus private _status;
    ConfirmationMode private _mode;
    uint16 private _graceDays;
    // Packed: 160 + 64 + 16 + 16 bits.
    address private _farmer;
    uint64 private _dueDate;
    uint16 private _defaultDays;
    uint16 private _aprBps;
    // Packed: 160 + 64 + 32 bits.
    address private _agent;
    uint64 private _loanId;
    uint32 private _orderCount;
    bytes32 private _farmerId;
    uint128 private _principal;
    uint128 private _paid;
    uint128 private _totalDue;
    uint128 private _repaid;
    uint128 private _reserved;
    uint128 private _returned;
    mapping(bytes32 category => Budget) private _budgets;
    mapping(uint256 orderId => Order) private _orders;
    mapping(bytes32 invoiceHash => bool) private _invoices;
    mapping(uint256 orderId => uint256) private _acceptedAt;
    bytes32 private _acceptedDigest;
    bytes32 private _disclosureHash;

    modifier onlyLender() {
        _checkLender();
        _;
    }

    modifier onlyBorrower() {
        _checkBorrower();
        _;
    }

    /// @param token The payment token (fen).
    /// @param registry The merchant registry consulted at every payment.
    /// @dev Deployed by the factory, which becomes the only account allowed to initialize clones.
    constructor(IERC20 token, IMerchantRegistry registry) {
        _FACTORY = msg.sender;
        _TOKEN = token;
        _REGISTRY = registry;
        _disableInitializers();
    }

    // ------------------------------------------------------------------ setup and funding

    /// @inheritdoc ILoanEscrow
    function initialize(
        uint256 loanId,
        address lender,
        LoanParams calldata p,
        bool funded,
        bytes32 acceptedDigest
    ) external initializer {
        if (msg.sender != _FACTORY) revert EscrowNotFactory(msg.sender);
        _storeTerms(loanId, lender, p);
        _acceptedDigest = acceptedDigest;
        _disclosureHash = p.disclosureHash;
        _storeBudgets(loanId, p.categories, p.budgets);
        _emitTerms(loanId, p);
        _setStatus(LoanStatus.Issued);
        if (funded) _markFunded(_TOKEN.balanceOf(address(this)));
    }

    /// @inheritdoc ILoanEscrow
    function fund() external nonReentrant onlyLender {
        _requireStatus(LoanStatus.Issued);
        if (block.timestamp > _drawDeadline) {
            revert EscrowDrawWindowClosed(_loanId, _drawDeadline, block.timestamp);
        }
        uint256 principal = _principal;
        _markFunded(principal);
        _TOKEN.safeTransferFrom(_lender, address(this), principal);
    }

    /// @inheritdoc ILoanEscrow
    function cancelLoan() external nonReentrant {
        _requireStatus(LoanStatus.Issued);
        // Past the draw deadline an unfunded loan can never be drawn: anyone may close it, so
        // a lender who never funds cannot block the farmer from borrowing elsewhere.
        if (msg.sender != _lender && block.timestamp <= _drawDeadline) {
            revert EscrowNotLender(_loanId, msg.sender);
        }
        _setStatus(LoanStatus.Cancelled);
    }

    // ------------------------------------------------------------------ disbursement

    /// @inheritdoc ILoanEscrow
    function orderPayment(address merchant, bytes32 category, uint256 amount, bytes32 invoiceHash)
        external
        nonReentrant
        onlyBorrower
        returns (uint256 orderId)
    {
        _checkDrawable();
        _checkOrder(merchant, category, amount, invoiceHash);
        _commit(category, amount);
        _invoices[invoiceHash] = true;
        orderId = ++_orderCount;
        if (_mode == ConfirmationMode.Immediate) {
            _release(merchant, category, amount, invoiceHash, orderId);
        } else {
            _orders[orderId] = Order(merchant, uint88(amount), OrderStatus.Pending, category, invoiceHash);
            _reserved += uint128(amount);
            emit PaymentOrdered(_loanId, orderId, merchant, category, amount, invoiceHash);
        }
    }

    /// @inheritdoc ILoanEscrow
    function confirmPayment(uint256 orderId) external nonReentrant {
        Order storage o = _pendingOrder(orderId);
        _checkConfirmer(o, orderId);
        (address merchant, bytes32 category, uint256 amount) = (o.merchant, o.category, o.amount);
        if (!_REGISTRY.isApproved(merchant, category)) {
            revert EscrowMerchantNotApproved(_loanId, merchant, category);
        }
        o.status = OrderStatus.Released;
        // Cannot underflow: `amount` was added to _reserved when the order was placed.
        unchecked {
            _reserved -= uint128(amount);
        }
        _release(merchant, category, amount, o.invoiceHash, orderId);
    }

    /// @inheritdoc ILoanEscrow
    function acceptOrder(uint256 orderId) external nonReentrant {
        if (_mode != ConfirmationMode.MerchantConfirms) revert EscrowWrongMode(_loanId, _mode);
        Order storage o = _orders[orderId];
        if (o.status != OrderStatus.Pending) revert EscrowOrderNotPending(_loanId, orderId, o.status);
        if (msg.sender != o.merchant) revert EscrowNotOrderMerchant(_loanId, orderId, msg.sender);
        o.status = OrderStatus.Accepted;
        _acceptedAt[orderId] = block.timestamp;
        emit PaymentAccepted(_loanId, orderId, msg.sender);
    }

    /// @inheritdoc ILoanEscrow
    function cancelPayment(uint256 orderId) external nonReentrant {
        Order storage o = _pendingOrder(orderId);
        _checkCanceller(o, orderId);
        uint256 amount = o.amount;
        o.status = OrderStatus.Cancelled;
        // Cannot underflow: the order's amount is part of both sums since it was placed.
        unchecked {
            _reserved -= uint128(amount);
            _budgets[o.category].committed -= uint128(amount);
        }
        delete _invoices[o.invoiceHash];
        emit PaymentCancelled(_loanId, orderId, msg.sender, amount);
        _refresh();
    }

    /// @inheritdoc ILoanEscrow
    function returnUnspent() external nonReentrant returns (uint256 amount) {
        if (block.timestamp <= _drawDeadline) {
            revert EscrowDrawWindowOpen(_loanId, _drawDeadline, block.timestamp);
        }
        if (!_isFunded()) revert EscrowInvalidStatus(_loanId, _status);
        amount = _available();
        if (amount == 0) revert EscrowNothingToReturn(_loanId);
        _returned += uint128(amount);
        emit LoanUnspentReturned(_loanId, _lender, amount);
        _refresh();
        _TOKEN.safeTransfer(_lender, amount);
    }

    // ------------------------------------------------------------------ repayment and status

    /// @inheritdoc ILoanEscrow
    function repay(uint256 amount) external nonReentrant {
        if (amount == 0) revert EscrowZeroAmount(_loanId);
        if (!_isRepayable()) revert EscrowInvalidStatus(_loanId, _status);
        uint256 owed = _outstanding();
        if (amount > owed) revert EscrowRepaymentExceedsOutstanding(_loanId, owed, amount);
        _repaid += uint128(amount);
        // Cannot underflow: amount <= owed was checked above.
        unchecked {
            emit LoanRepaymentReceived(_loanId, msg.sender, amount, owed - amount);
        }
        _refresh();
        _TOKEN.safeTransferFrom(msg.sender, _lender, amount);
    }

    /// @inheritdoc ILoanEscrow
    function refreshStatus() external nonReentrant returns (LoanStatus) {
        _refresh();
        return _status;
    }

    /// @inheritdoc ILoanEscrow
    function declareDefault() external nonReentrant onlyLender {
        _refresh();
        LoanStatus s = _status;
        if (s != LoanStatus.Active && s != LoanStatus.Overdue) revert EscrowInvalidStatus(_loanId, s);
        if (_outstanding() == 0) revert EscrowNothingOutstanding(_loanId);
        uint256 after_ = uint256(_dueDate) + (uint256(_graceDays) + _defaultDays) * 1 days;
        if (block.timestamp <= after_) revert EscrowNotYetDefaultable(_loanId, after_, block.timestamp);
        _setStatus(LoanStatus.Defaulted);
    }

    /// @inheritdoc ILoanEscrow
    function writeOff() external nonReentrant onlyLender {
        _requireStatus(LoanStatus.Defaulted);
        _setStatus(LoanStatus.WrittenOff);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ILoanEscrow
    function terms() external view returns (Terms memory) {
        return Terms({
            loanId: _loanId,
            farmerId: _farmerId,
            lender: _lender,
            farmer: _farmer,
            agent: _agent,
            principal: _principal,
            totalDue: _totalDue,
            drawDeadline: _drawDeadline,
            dueDate: _dueDate,
            graceDays: _graceDays,
            defaultDays: _defaultDays,
            mode: _mode
        });
    }

    /// @inheritdoc ILoanEscrow
    function accounting() external view returns (Accounting memory) {
        bool funded = _isFunded();
        return Accounting({
            funded: funded ? _principal : 0,
            paid: _paid,
            reserved: _reserved,
            returned: _returned,
            available: _available(),
            repaid: _repaid,
            amountDue: funded ? _amountDue() : 0,
            outstanding: funded ? _amountDue() - _repaid : 0
        });
    }

    /// @inheritdoc ILoanEscrow
    function acceptance() external view returns (bytes32 digest, bytes32 disclosureHash, uint256 aprBps) {
        return (_acceptedDigest, _disclosureHash, _aprBps);
    }

    /// @inheritdoc ILoanEscrow
    function orderAcceptedAt(uint256 orderId) external view returns (uint256) {
        return _acceptedAt[orderId];
    }

    /// @inheritdoc ILoanEscrow
    function status() external view returns (LoanStatus) {
        return _status;
    }

    /// @inheritdoc ILoanEscrow
    function isOpen() external view returns (bool) {
        LoanStatus s = _closingStatus();
        return s == LoanStatus.Issued || s == LoanStatus.Active || s == LoanStatus.Overdue
            || s == LoanStatus.Defaulted;
    }

    /// @inheritdoc ILoanEscrow
    function outstanding() external view returns (uint256) {
        return _isRepayable() ? _outstanding() : 0;
    }

    /// @inheritdoc ILoanEscrow
    function budgetOf(bytes32 category) external view returns (Budget memory) {
        return _budgets[category];
    }

    /// @inheritdoc ILoanEscrow
    function order(uint256 orderId) external view returns (Order memory) {
        return _orders[orderId];
    }

    /// @inheritdoc ILoanEscrow
    function orderCount() external view returns (uint256) {
        return _orderCount;
    }

    /// @inheritdoc ILoanEscrow
    function invoiceUsed(bytes32 invoiceHash) external view returns (bool) {
        return _invoices[invoiceHash];
    }

    /// @inheritdoc ILoanEscrow
    function bindings() external view returns (address factory, address token, address registry) {
        return (_FACTORY, address(_TOKEN), address(_REGISTRY));
    }

    // ------------------------------------------------------------------ private: setup

    /// @dev Write the fixed terms; the factory validated them (amounts fit uint88).
    function _storeTerms(uint256 loanId, address lender, LoanParams calldata p) private {
        _lender = lender;
        _drawDeadline = p.drawDeadline;
        _mode = p.mode;
        _graceDays = p.graceDays;
        _farmer = p.farmer;
        _dueDate = p.dueDate;
        _defaultDays = p.defaultDays;
        _aprBps = p.aprBps;
        _agent = p.agent;
        _loanId = uint64(loanId);
        _farmerId = p.farmerId;
        _principal = uint128(p.principal);
        _totalDue = uint128(p.totalDue);
    }

    /// @dev One slot per category: budget and (zero) committed amount.
    function _storeBudgets(uint256 loanId, bytes32[] calldata categories, uint256[] calldata budgets)
        private
    {
        for (uint256 i; i < categories.length; ++i) {
            _budgets[categories[i]].budget = uint128(budgets[i]);
            emit LoanBudgetSet(loanId, categories[i], budgets[i]);
        }
    }

    /// @dev The terms event (its own frame keeps the stack shallow).
    function _emitTerms(uint256 loanId, LoanParams calldata p) private {
        emit LoanTermsRecorded(
            loanId,
            p.farmerId,
            p.scheduleHash,
            p.disclosureHash,
            p.totalDue,
            p.dueDate,
            p.drawDeadline,
            p.graceDays,
            p.defaultDays,
            p.mode
        );
    }

    /// @dev Issued -> Active once `balance` covers the principal.
    function _markFunded(uint256 balance) private {
        uint256 principal = _principal;
        if (balance < principal) revert EscrowUnderfunded(_loanId, balance, principal);
        _setStatus(LoanStatus.Active);
        emit LoanFunded(_loanId, _lender, principal);
    }

    // ------------------------------------------------------------------ private: disbursement

    /// @dev Orders are accepted while Active and not after the draw deadline.
    function _checkDrawable() private view {
        if (_status != LoanStatus.Active) revert EscrowInvalidStatus(_loanId, _status);
        if (block.timestamp > _drawDeadline) {
            revert EscrowDrawWindowClosed(_loanId, _drawDeadline, block.timestamp);
        }
    }

    /// @dev Amount, invoice and merchant checks of a new order.
    function _checkOrder(address merchant, bytes32 category, uint256 amount, bytes32 invoiceHash)
        private
        view
    {
        if (amount == 0) revert EscrowZeroAmount(_loanId);
        if (invoiceHash == bytes32(0)) revert EscrowZeroInvoice(_loanId);
        if (_invoices[invoiceHash]) revert EscrowInvoiceAlreadyUsed(_loanId, invoiceHash);
        if (merchant == _farmer || merchant == _agent) revert EscrowMerchantIsBorrower(_loanId, merchant);
        if (!_REGISTRY.isApproved(merchant, category)) {
            revert EscrowMerchantNotApproved(_loanId, merchant, category);
        }
    }

    /// @dev Commit `amount` against the category budget or revert with what is left.
    function _commit(bytes32 category, uint256 amount) private {
        Budget storage b = _budgets[category];
        uint256 budget = b.budget;
        if (budget == 0) revert EscrowUnknownCategory(_loanId, category);
        uint256 remaining = budget - b.committed;
        if (amount > remaining) revert EscrowCategoryBudgetExceeded(_loanId, category, remaining, amount);
        // Cannot overflow: committed + amount <= budget < 2**128.
        unchecked {
            b.committed += uint128(amount);
        }
    }

    /// @dev Effects and the transfer of one merchant payment (callers did every check).
    function _release(address merchant, bytes32 category, uint256 amount, bytes32 invoiceHash, uint256 orderId)
        private
    {
        _paid += uint128(amount);
        emit LoanDisbursed(_loanId, merchant, category, amount, invoiceHash, orderId);
        _TOKEN.safeTransfer(merchant, amount);
    }

    /// @dev The pending or accepted order `orderId`, or revert with its status.
    function _pendingOrder(uint256 orderId) private view returns (Order storage o) {
        o = _orders[orderId];
        OrderStatus s = o.status;
        if (s != OrderStatus.Pending && s != OrderStatus.Accepted) {
            revert EscrowOrderNotPending(_loanId, orderId, s);
        }
    }

    /// @dev MerchantConfirms: the merchant; BorrowerConfirms: the farmer or agent.
    function _checkConfirmer(Order storage o, uint256 orderId) private view {
        bool ok = _mode == ConfirmationMode.MerchantConfirms ? msg.sender == o.merchant : _isBorrower(msg.sender);
        if (!ok) revert EscrowNotConfirmer(_loanId, orderId, msg.sender);
    }

    /// @dev The merchant; the farmer or agent before the merchant accepted the order or once the
    ///      delivery period after acceptance is over; the lender after the confirmation period.
    function _checkCanceller(Order storage o, uint256 orderId) private view {
        if (msg.sender == o.merchant) return;
        if (_isBorrower(msg.sender)) {
            if (o.status == OrderStatus.Pending) return;
            if (block.timestamp > _acceptedAt[orderId] + DELIVERY_PERIOD) return;
        }
        bool lenderMay = msg.sender == _lender && block.timestamp > _drawDeadline + CONFIRMATION_PERIOD;
        if (!lenderMay) revert EscrowNotCanceller(_loanId, orderId, msg.sender);
    }

    // ------------------------------------------------------------------ private: accounting

    /// @dev Funded once the lender's principal arrived (Cancelled and Issued loans never were).
    function _isFunded() private view returns (bool) {
        LoanStatus s = _status;
        return s != LoanStatus.None && s != LoanStatus.Issued && s != LoanStatus.Cancelled;
    }

    /// @dev Repayments are accepted while Active, Overdue or Defaulted.
    function _isRepayable() private view returns (bool) {
        LoanStatus s = _status;
        return s == LoanStatus.Active || s == LoanStatus.Overdue || s == LoanStatus.Defaulted;
    }

    /// @dev Principal and interest pro rata on what was paid to merchants, rounded down (in the
    ///      farmer's favour): floor(paid * totalDue / principal); the whole principal drawn owes
    ///      exactly totalDue, nothing drawn owes nothing.
    function _amountDue() private view returns (uint256) {
        return Math.mulDiv(_paid, _totalDue, _principal);
    }

    /// @dev What may still be repaid (caller ensures the loan is funded).
    function _outstanding() private view returns (uint256) {
        return _amountDue() - _repaid;
    }

    /// @dev Orderable (or returnable) fen: funded - paid - reserved - returned.
    function _available() private view returns (uint256) {
        if (!_isFunded()) return 0;
        return uint256(_principal) - _paid - _reserved - _returned;
    }

    // ------------------------------------------------------------------ private: status

    /// @dev The status a refresh would close the loan to (Cancelled, Repaid), else the stored one.
    function _closingStatus() private view returns (LoanStatus) {
        LoanStatus s = _status;
        if (block.timestamp <= _drawDeadline) return s;
        if (s == LoanStatus.Issued) return LoanStatus.Cancelled;
        if (_isRepayable() && _outstanding() == 0 && _reserved == 0) return LoanStatus.Repaid;
        return s;
    }

    /// @dev Time- and balance-driven transitions: an unfunded loan past its draw deadline is
    ///      cancelled; an Active, Overdue or Defaulted loan is repaid or goes overdue.
    function _refresh() private {
        LoanStatus s = _status;
        if (s == LoanStatus.Issued && block.timestamp > _drawDeadline) {
            _setStatus(LoanStatus.Cancelled);
            return;
        }
        if (!_isRepayable()) return;
        if (_outstanding() == 0) {
            if (block.timestamp > _drawDeadline && _reserved == 0) _setStatus(LoanStatus.Repaid);
        } else if (s == LoanStatus.Active && block.timestamp > _overdueAfter()) {
            _setStatus(LoanStatus.Overdue);
        }
    }

    /// @dev The moment the grace period ends.
    function _overdueAfter() private view returns (uint256) {
        return uint256(_dueDate) + uint256(_graceDays) * 1 days;
    }

    /// @dev Store the new status and tell the world.
    function _setStatus(LoanStatus next) private {
        LoanStatus previous = _status;
        _status = next;
        emit LoanStatusChanged(_loanId, previous, next);
    }

    /// @dev Revert unless the status is `expected`.
    function _requireStatus(LoanStatus expected) private view {
        if (_status != expected) revert EscrowInvalidStatus(_loanId, _status);
    }

    /// @dev The farmer or (if set) the agent.
    function _isBorrower(address account) private view returns (bool) {
        return account == _farmer || (account == _agent && account != address(0));
    }

    function _checkLender() private view {
        if (msg.sender != _lender) revert EscrowNotLender(_loanId, msg.sender);
    }

    function _checkBorrower() private view {
        if (!_isBorrower(msg.sender)) revert EscrowNotBorrower(_loanId, msg.sender);
    }
}
