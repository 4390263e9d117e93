// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ILoanEscrow} from "./ILoanEscrow.sol";

/// @title Errors, events and functions of the loan factory.
/// @notice A lender with LENDER_ROLE turns a credit decision into a loan: the factory clones one
///         LoanEscrow per loan (EIP-1167, CREATE2 so the address is known before mining) and,
///         optionally in the same transaction, moves the principal into it. A farmer has at most
///         one open loan; `activeLoanOf` names it for sale settlement.
interface ILoanFactory {
    /// @notice An account tried to grant a role to itself.
    error LoanFactorySelfGrant(bytes32 role, address account);
    /// @notice The zero address was given where an account is required.
    error LoanFactoryZeroAddress();
    /// @notice A zero farmer id was given.
    error LoanFactoryZeroFarmerId();
    /// @notice The lender may not also be the farmer or the agent.
    error LoanFactoryLenderIsBorrower(address lender);
    /// @notice The agent may not be the farmer.
    error LoanFactoryAgentIsFarmer(address agent);
    /// @notice Principal must be above zero.
    error LoanFactoryZeroPrincipal();
    /// @notice Principal or total due exceed what the escrow stores (type(uint88).max).
    error LoanFactoryAmountTooLarge(uint256 amount, uint256 max);
    /// @notice Categories and budgets must be parallel.
    error LoanFactoryLengthMismatch(uint256 categories, uint256 budgets);
    /// @notice Between 1 and MAX_CATEGORIES categories are allowed.
    error LoanFactoryCategoryCount(uint256 count, uint256 max);
    /// @notice Categories must be strictly ascending (no duplicates).
    error LoanFactoryCategoryOrder(bytes32 previous, bytes32 category);
    /// @notice The category is not registered in the merchant registry.
    error LoanFactoryUnknownCategory(bytes32 category);
    /// @notice Every budget must be above zero.
    error LoanFactoryZeroBudget(bytes32 category);
    /// @notice The budgets must add up to the principal.
    error LoanFactoryBudgetSumMismatch(uint256 principal, uint256 budgetSum);
    /// @notice The draw deadline must be in the future.
    error LoanFactoryDrawDeadlinePassed(uint256 drawDeadline, uint256 blockTime);
    /// @notice The due date may not precede the draw deadline.
    error LoanFactoryDueBeforeDrawDeadline(uint256 dueDate, uint256 drawDeadline);
    /// @notice The total due must cover the principal.
    error LoanFactoryDueBelowPrincipal(uint256 totalDue, uint256 principal);
    /// @notice The farmer already has an open loan.
    error LoanFactoryActiveLoanExists(bytes32 farmerId, address escrow);
    /// @notice The same lender already issued a loan to this farmer with this schedule hash.
    error LoanFactoryDuplicateLoan(address escrow);

    /// @notice A loan was issued as the clone `escrow`.
    event LoanIssued(
        uint256 indexed loanId,
        address indexed escrow,
        bytes32 indexed farmerId,
        address lender,
        address farmer,
        address agent,
        uint256 principal
    );

    /// @notice Issue a loan without funding it (the lender calls `escrow.fund()` later).
    /// @dev Requires LENDER_ROLE; the caller becomes the lender. Emits LoanIssued and the
    ///      escrow's initialization events.
    /// @param p The decision: see ILoanEscrow.LoanParams for each field's requirements.
    /// @return loanId Sequential from 1.
    /// @return escrow The clone's address (= predictEscrow(caller, farmerId, scheduleHash)).
    function issueLoan(ILoanEscrow.LoanParams calldata p) external returns (uint256 loanId, address escrow);

    /// @notice Issue a loan and move the principal from the lender into its escrow, in one
    ///         transaction (the lender approves this factory for at least `principal`).
    /// @dev Requires LENDER_ROLE. Emits LoanIssued, the escrow's events and LoanFunded.
    /// @param p The decision.
    /// @return loanId Sequential from 1.
    /// @return escrow The clone's address.
    function issueAndFundLoan(ILoanEscrow.LoanParams calldata p)
        external
        returns (uint256 loanId, address escrow);

    /// @notice The escrow of the farmer's open loan (Issued, Active, Overdue or Defaulted), or zero.
    /// @param farmerId The farmer's pseudonymous id.
    function activeLoanOf(bytes32 farmerId) external view returns (address);

    /// @notice The escrow of the farmer's most recent loan, open or closed, or zero.
    /// @param farmerId The farmer's pseudonymous id.
    function latestLoanOf(bytes32 farmerId) external view returns (address);

    /// @notice The escrow of loan `loanId`, or zero.
    /// @param loanId The factory's loan number.
    function escrowOf(uint256 loanId) external view returns (address);

    /// @notice Number of loans issued.
    function loanCount() external view returns (uint256);

    /// @notice The address the next loan of `lender` to `farmerId` with `scheduleHash` gets.
    /// @param lender The issuing lender.
    /// @param farmerId The farmer's pseudonymous id.
    /// @param scheduleHash The loan's schedule hash.
    function predictEscrow(address lender, bytes32 farmerId, bytes32 scheduleHash)
        external
        view
        returns (address);

    /// @notice The escrow implementation every clone delegates to.
    function implementation() external view returns (address);

    /// @notice The payment token and merchant registry every loan of this factory uses.
    function bindings() external view returns (address token, address registry);
}
