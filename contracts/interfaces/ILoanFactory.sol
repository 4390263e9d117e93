// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ILoanEscrow} from "./ILoanEscrow.sol";

/// @title Errors, events and functions of the loan factory.
/// @notice A lender with LENDER_ROLE turns a credit decision into a loan: the factory clones one
///         LoanEscrow per loan (EIP-1167, CREATE2 so the address is known before mining) and,
///         optionally in the same transaction, moves the principal into it. A loan exists only
///         with the farmer's acceptance: an EIP-712 signature of the farmer's TeaTrace wallet over
///         every term that matters, checked when issuing (the lender relays it; the farmer needs
///         no gas). A farmer has at most one open loan; `activeLoanOf` names it for sale
///         settlement.
interface ILoanFactory {
    /// @notice The farmer's signed acceptance of a loan's terms (see ACCEPTANCE_TYPEHASH).
    struct Acceptance {
        uint256 nonce; // the farmer's current acceptance nonce (acceptanceNonce)
        uint256 deadline; // unix time after which the signature is void
        bytes signature; // 65-byte ECDSA signature of the farmer's TeaTrace wallet
    }

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
    /// @notice TeaTrace does not know this farmer.
    error LoanFactoryUnknownFarmer(bytes32 farmerId);
    /// @notice The farmer is deactivated in TeaTrace.
    error LoanFactoryFarmerInactive(bytes32 farmerId);
    /// @notice The loan's farmer address is not the farmer's TeaTrace wallet (zero: no wallet).
    error LoanFactoryNotFarmerWallet(bytes32 farmerId, address wallet, address given);
    /// @notice The farmer's acceptance expired before it was relayed.
    error LoanFactoryAcceptanceExpired(uint256 deadline, uint256 blockTime);
    /// @notice The acceptance was signed for another nonce (used, burnt or not yet reached).
    error LoanFactoryAcceptanceNonce(bytes32 farmerId, uint256 expected, uint256 given);
    /// @notice The signature is not the farmer's wallet's signature of these terms.
    error LoanFactoryInvalidAcceptance(bytes32 farmerId, address wallet);
    /// @notice Only the farmer's TeaTrace wallet may burn the farmer's acceptance nonce.
    error LoanFactoryNotFarmer(bytes32 farmerId, address caller);

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

    /// @notice The farmer accepted loan `loanId`: `wallet` signed `digest` (EIP-712) with `nonce`.
    event LoanAccepted(
        uint256 indexed loanId,
        bytes32 indexed farmerId,
        address indexed wallet,
        bytes32 digest,
        uint256 nonce,
        bytes signature
    );
    /// @notice The farmer's wallet burnt acceptance nonce `nonce`: signatures over it are void.
    event AcceptanceNonceBurned(bytes32 indexed farmerId, address indexed wallet, uint256 nonce);

    /// @notice Issue a loan the farmer accepted, without funding it (the lender calls
    ///         `escrow.fund()` later).
    /// @dev Requires LENDER_ROLE; the caller becomes the lender. The farmer is known and active
    ///      in TeaTrace, `p.farmer` is the farmer's TeaTrace wallet and `a` is that wallet's
    ///      signature of acceptanceDigest(p, caller, a.nonce, a.deadline) with the farmer's
    ///      current nonce, before its deadline; the nonce is used up. Emits LoanIssued,
    ///      LoanAccepted and the escrow's initialization events.
    /// @param p The decision: see ILoanEscrow.LoanParams for each field's requirements.
    /// @param a The farmer's acceptance.
    /// @return loanId Sequential from 1.
    /// @return escrow The clone's address (= predictEscrow(caller, farmerId, scheduleHash)).
    function issueLoan(ILoanEscrow.LoanParams calldata p, Acceptance calldata a)
        external
        returns (uint256 loanId, address escrow);

    /// @notice Issue an accepted loan and move the principal from the lender into its escrow,
    ///         in one transaction (the lender approves this factory for at least `principal`).
    /// @dev As issueLoan, plus LoanFunded.
    /// @param p The decision.
    /// @param a The farmer's acceptance.
    /// @return loanId Sequential from 1.
    /// @return escrow The clone's address.
    function issueAndFundLoan(ILoanEscrow.LoanParams calldata p, Acceptance calldata a)
        external
        returns (uint256 loanId, address escrow);

    /// @notice Void every signed, unrelayed acceptance of the farmer (the nonce moves on).
    /// @dev Only the farmer's TeaTrace wallet. Emits AcceptanceNonceBurned.
    /// @param farmerId The farmer's pseudonymous id.
    function burnAcceptanceNonce(bytes32 farmerId) external;

    /// @notice The farmer's TeaTrace wallet epoch, which every acceptance signs (walletEpoch).
    /// @param farmerId The farmer.
    /// @return The number of wallet changes TeaTrace recorded for the farmer.
    function acceptanceEpoch(bytes32 farmerId) external view returns (uint256);

    /// @notice The nonce the farmer's next acceptance must carry.
    /// @param farmerId The farmer's pseudonymous id.
    function acceptanceNonce(bytes32 farmerId) external view returns (uint256);

    /// @notice The EIP-712 digest the farmer's wallet signs to accept `p` from `lender`.
    /// @param p The loan's terms.
    /// @param lender The lender who will issue (and send) the loan.
    /// @param nonce The farmer's acceptance nonce.
    /// @param deadline The signature's deadline.
    function acceptanceDigest(ILoanEscrow.LoanParams calldata p, address lender, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32);

    /// @notice The EIP-712 domain separator (name "TealedgerLoans", version "1").
    function domainSeparator() external view returns (bytes32);

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

    /// @notice The TeaTrace ledger whose farmer wallets accept loans.
    function teaTrace() external view returns (address);
}
