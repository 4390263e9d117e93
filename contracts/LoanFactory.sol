// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ILoanEscrow} from "./interfaces/ILoanEscrow.sol";
import {ILoanFactory} from "./interfaces/ILoanFactory.sol";
import {IMerchantRegistry} from "./interfaces/IMerchantRegistry.sol";
import {ITeaTrace} from "./interfaces/ITeaTrace.sol";
import {LoanEscrow} from "./LoanEscrow.sol";

/// @title LoanFactory
/// @notice Issues loans as EIP-1167 clones of one LoanEscrow implementation.
/// @dev Invariants (docs/invariants.md):
///      1. A farmer has at most one open loan: issuing is refused while `activeLoanOf` is set.
///      2. Only the factory initializes a clone, once, in the transaction that creates it.
///      3. Every loan's budgets are in registered categories and add up to its principal.
///      4. Every loan was accepted by its farmer's TeaTrace wallet: an EIP-712 signature over its
///         terms, with the farmer's current nonce (used once) and before its deadline.
///      The EIP-712 domain is built here rather than with OpenZeppelin's EIP712 (which imports
///      Cancun-only `mcopy` code in OZ 5.7; the project compiles for shanghai), as in
///      ConsentRegistry; SignatureChecker is avoided for the same reason (EOA wallets only).
contract LoanFactory is AccessControl, ReentrancyGuard, ILoanFactory {
    using SafeERC20 for IERC20;

    bytes32 public constant LENDER_ROLE = keccak256("LENDER_ROLE");
    /// @notice Most categories one loan may budget (bounds the issuing loop).
    uint256 public constant MAX_CATEGORIES = 16;
    /// @notice Largest principal or total due in fen (what an order slot stores).
    uint256 public constant MAX_AMOUNT = type(uint88).max;

    /// @notice The EIP-712 type the farmer's wallet signs (arrays hashed as EIP-712 says).
    bytes32 public constant ACCEPTANCE_TYPEHASH = keccak256(
        "LoanAcceptance(bytes32 farmerId,address lender,address farmer,address agent,uint256 principal,"
        "uint256 totalDue,uint16 aprBps,bytes32 disclosureHash,bytes32 scheduleHash,bytes32[] categories,"
        "uint256[] budgets,uint64 drawDeadline,uint64 dueDate,uint16 graceDays,uint16 defaultDays,"
        "uint8 mode,uint256 walletEpoch,uint256 nonce,uint256 deadline)"
    );
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _NAME_HASH = keccak256("TealedgerLoans");
    bytes32 private constant _VERSION_HASH = keccak256("1");

    IERC20 private immutable _TOKEN;
    IMerchantRegistry private immutable _REGISTRY;
    ITeaTrace private immutable _TRACE;
    address private immutable _IMPLEMENTATION;
    uint256 private immutable _CACHED_CHAIN_ID;
    bytes32 private immutable _CACHED_DOMAIN_SEPARATOR;

    uint256 private _loanCount;
    mapping(uint256 loanId => address) private _escrows;
    mapping(bytes32 farmerId => address) private _latestLoan;
    mapping(bytes32 farmerId => uint256) private _nonces;

    /// @param token The payment token every loan of this factory uses.
    /// @param registry The merchant registry every loan consults.
    /// @param teaTrace The ledger whose farmer wallets accept loans.
    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants LENDER_ROLE).
    constructor(IERC20 token, IMerchantRegistry registry, ITeaTrace teaTrace, address admin) {
        if (
            address(token) == address(0) || address(registry) == address(0) || address(teaTrace) == address(0)
                || admin == address(0)
        ) revert LoanFactoryZeroAddress();
        _TOKEN = token;
        _REGISTRY = registry;
        _TRACE = teaTrace;
        _IMPLEMENTATION = address(new LoanEscrow(token, registry));
        _CACHED_CHAIN_ID = block.chainid;
        _CACHED_DOMAIN_SEPARATOR = _buildDomainSeparator();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Grant `role` to `account`; nobody grants a role to itself.
    /// @dev Requires the role's admin role. Emits RoleGranted.
    /// @param role The role.
    /// @param account Receives the role; not the caller.
    function grantRole(bytes32 role, address account) public override onlyRole(getRoleAdmin(role)) {
        if (account == _msgSender()) revert LoanFactorySelfGrant(role, account);
        _grantRole(role, account);
    }

    /// @inheritdoc ILoanFactory
    function issueLoan(ILoanEscrow.LoanParams calldata p, Acceptance calldata a)
        external
        nonReentrant
        onlyRole(LENDER_ROLE)
        returns (uint256 loanId, address escrow)
    {
        return _issue(p, a, false);
    }

    /// @inheritdoc ILoanFactory
    function issueAndFundLoan(ILoanEscrow.LoanParams calldata p, Acceptance calldata a)
        external
        nonReentrant
        onlyRole(LENDER_ROLE)
        returns (uint256 loanId, address escrow)
    {
        return _issue(p, a, true);
    }

    /// @inheritdoc ILoanFactory
    function burnAcceptanceNonce(bytes32 farmerId) external nonReentrant {
        address wallet = _TRACE.farmer(farmerId).wallet;
        if (wallet == address(0) || wallet != _msgSender()) revert LoanFactoryNotFarmer(farmerId, _msgSender());
        uint256 nonce = _nonces[farmerId]++;
        emit AcceptanceNonceBurned(farmerId, wallet, nonce);
    }

    /// @inheritdoc ILoanFactory
    function acceptanceNonce(bytes32 farmerId) external view returns (uint256) {
        return _nonces[farmerId];
    }

    /// @inheritdoc ILoanFactory
    function acceptanceDigest(ILoanEscrow.LoanParams calldata p, address lender, uint256 nonce, uint256 deadline)
        public
        view
        returns (bytes32)
    {
        // The wallet epoch binds the signature to this wallet assignment: after a wallet change
        // (even back to the same address) a signature made before it never validates again.
        uint256 epoch = _TRACE.walletEpoch(p.farmerId);
        bytes32 structHash =
            keccak256(bytes.concat(_encodeParties(p, lender), _encodeTerms(p), abi.encode(epoch, nonce, deadline)));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// @inheritdoc ILoanFactory
    function domainSeparator() public view returns (bytes32) {
        return block.chainid == _CACHED_CHAIN_ID ? _CACHED_DOMAIN_SEPARATOR : _buildDomainSeparator();
    }

    /// @inheritdoc ILoanFactory
    function acceptanceEpoch(bytes32 farmerId) external view returns (uint256) {
        return _TRACE.walletEpoch(farmerId);
    }

    /// @inheritdoc ILoanFactory
    function teaTrace() external view returns (address) {
        return address(_TRACE);
    }

    /// @inheritdoc ILoanFactory
    function activeLoanOf(bytes32 farmerId) public view returns (address) {
        address escrow = _latestLoan[farmerId];
        if (escrow == address(0) || !ILoanEscrow(escrow).isOpen()) return address(0);
        return escrow;
    }

    /// @inheritdoc ILoanFactory
    function latestLoanOf(bytes32 farmerId) external view returns (address) {
        return _latestLoan[farmerId];
    }

    /// @inheritdoc ILoanFactory
    function escrowOf(uint256 loanId) external view returns (address) {
        return _escrows[loanId];
    }

    /// @inheritdoc ILoanFactory
    function loanCount() external view returns (uint256) {
        return _loanCount;
    }

    /// @inheritdoc ILoanFactory
    function predictEscrow(address lender, bytes32 farmerId, bytes32 scheduleHash)
        public
        view
        returns (address)
    {
        return Clones.predictDeterministicAddress(_IMPLEMENTATION, _salt(lender, farmerId, scheduleHash));
    }

    /// @inheritdoc ILoanFactory
    function implementation() external view returns (address) {
        return _IMPLEMENTATION;
    }

    /// @inheritdoc ILoanFactory
    function bindings() external view returns (address token, address registry) {
        return (address(_TOKEN), address(_REGISTRY));
    }

    /// @dev Validate, verify the acceptance, record, clone, (fund,) initialize.
    function _issue(ILoanEscrow.LoanParams calldata p, Acceptance calldata a, bool fundNow)
        private
        returns (uint256 loanId, address escrow)
    {
        _validate(p);
        address lender = _msgSender();
        _checkNoOpenLoan(p.farmerId);
        bytes32 digest = _useAcceptance(p, lender, a);
        bytes32 salt = _salt(lender, p.farmerId, p.scheduleHash);
        address predicted = Clones.predictDeterministicAddress(_IMPLEMENTATION, salt);
        if (predicted.code.length != 0) revert LoanFactoryDuplicateLoan(predicted);
        loanId = ++_loanCount;
        _escrows[loanId] = predicted;
        _latestLoan[p.farmerId] = predicted;
        emit LoanIssued(loanId, predicted, p.farmerId, lender, p.farmer, p.agent, p.principal);
        emit LoanAccepted(loanId, p.farmerId, p.farmer, digest, a.nonce, a.signature);
        escrow = Clones.cloneDeterministic(_IMPLEMENTATION, salt);
        if (fundNow) _TOKEN.safeTransferFrom(lender, escrow, p.principal);
        ILoanEscrow(escrow).initialize(loanId, lender, p, fundNow, digest);
    }

    /// @dev Check the farmer's signature of the terms (the farmer's wallet is `p.farmer`, which
    ///      _validateParties checked against TeaTrace), then use up the nonce.
    function _useAcceptance(ILoanEscrow.LoanParams calldata p, address lender, Acceptance calldata a)
        private
        returns (bytes32 digest)
    {
        if (a.deadline < block.timestamp) revert LoanFactoryAcceptanceExpired(a.deadline, block.timestamp);
        uint256 expected = _nonces[p.farmerId];
        if (a.nonce != expected) revert LoanFactoryAcceptanceNonce(p.farmerId, expected, a.nonce);
        digest = acceptanceDigest(p, lender, a.nonce, a.deadline);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, a.signature);
        if (err != ECDSA.RecoverError.NoError || signer != p.farmer) {
            revert LoanFactoryInvalidAcceptance(p.farmerId, p.farmer);
        }
        _nonces[p.farmerId] = expected + 1;
    }

    /// @dev The first words of the EIP-712 struct encoding: type, parties, money, disclosure.
    function _encodeParties(ILoanEscrow.LoanParams calldata p, address lender) private pure returns (bytes memory) {
        return abi.encode(
            ACCEPTANCE_TYPEHASH, p.farmerId, lender, p.farmer, p.agent, p.principal, p.totalDue, p.aprBps, p.disclosureHash
        );
    }

    /// @dev The middle words: schedule, budgets (EIP-712 arrays: hash of the packed elements), dates, mode.
    function _encodeTerms(ILoanEscrow.LoanParams calldata p) private pure returns (bytes memory) {
        return abi.encode(
            p.scheduleHash,
            keccak256(abi.encodePacked(p.categories)),
            keccak256(abi.encodePacked(p.budgets)),
            p.drawDeadline,
            p.dueDate,
            p.graceDays,
            p.defaultDays,
            uint8(p.mode)
        );
    }

    /// @dev EIP-712 domain separator of this contract on the current chain.
    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(_DOMAIN_TYPEHASH, _NAME_HASH, _VERSION_HASH, block.chainid, address(this)));
    }

    /// @dev One open loan per farmer.
    function _checkNoOpenLoan(bytes32 farmerId) private view {
        address open = activeLoanOf(farmerId);
        if (open != address(0)) revert LoanFactoryActiveLoanExists(farmerId, open);
    }

    /// @dev Parties, amounts, dates, then budgets.
    function _validate(ILoanEscrow.LoanParams calldata p) private view {
        _validateParties(p);
        if (p.principal == 0) revert LoanFactoryZeroPrincipal();
        if (p.totalDue > MAX_AMOUNT) revert LoanFactoryAmountTooLarge(p.totalDue, MAX_AMOUNT);
        if (p.totalDue < p.principal) revert LoanFactoryDueBelowPrincipal(p.totalDue, p.principal);
        if (p.drawDeadline <= block.timestamp) {
            revert LoanFactoryDrawDeadlinePassed(p.drawDeadline, block.timestamp);
        }
        if (p.dueDate < p.drawDeadline) revert LoanFactoryDueBeforeDrawDeadline(p.dueDate, p.drawDeadline);
        _validateBudgets(p.principal, p.categories, p.budgets);
    }

    /// @dev Farmer id and wallet set, the farmer known, active and `p.farmer` its TeaTrace wallet;
    ///      lender is neither farmer nor agent; agent is not the farmer.
    function _validateParties(ILoanEscrow.LoanParams calldata p) private view {
        if (p.farmerId == bytes32(0)) revert LoanFactoryZeroFarmerId();
        if (p.farmer == address(0)) revert LoanFactoryZeroAddress();
        address lender = _msgSender();
        if (p.farmer == lender || p.agent == lender) revert LoanFactoryLenderIsBorrower(lender);
        if (p.agent == p.farmer) revert LoanFactoryAgentIsFarmer(p.agent);
        ITeaTrace.FarmerInfo memory f = _TRACE.farmer(p.farmerId);
        if (f.cooperative == address(0)) revert LoanFactoryUnknownFarmer(p.farmerId);
        if (!f.active) revert LoanFactoryFarmerInactive(p.farmerId);
        if (f.wallet != p.farmer) revert LoanFactoryNotFarmerWallet(p.farmerId, f.wallet, p.farmer);
    }

    /// @dev 1..MAX_CATEGORIES ascending registered categories, budgets > 0 adding up to principal.
    function _validateBudgets(uint256 principal, bytes32[] calldata categories, uint256[] calldata budgets)
        private
        view
    {
        uint256 n = categories.length;
        if (n != budgets.length) revert LoanFactoryLengthMismatch(n, budgets.length);
        if (n == 0 || n > MAX_CATEGORIES) revert LoanFactoryCategoryCount(n, MAX_CATEGORIES);
        uint256 sum;
        bytes32 previous;
        for (uint256 i; i < n; ++i) {
            bytes32 category = categories[i];
            if (i > 0 && category <= previous) revert LoanFactoryCategoryOrder(previous, category);
            if (budgets[i] == 0) revert LoanFactoryZeroBudget(category);
            if (!_REGISTRY.isCategory(category)) revert LoanFactoryUnknownCategory(category);
            sum += budgets[i];
            previous = category;
        }
        if (sum != principal) revert LoanFactoryBudgetSumMismatch(principal, sum);
    }

    /// @dev CREATE2 salt: one loan per (lender, farmer, schedule).
    function _salt(address lender, bytes32 farmerId, bytes32 scheduleHash) private pure returns (bytes32) {
        return keccak256(abi.encode(lender, farmerId, scheduleHash));
    }
}
