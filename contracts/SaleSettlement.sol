// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ILoanEscrow} from "./interfaces/ILoanEscrow.sol";
import {ILoanFactory} from "./interfaces/ILoanFactory.sol";
import {ISaleSettlement, ITeaTraceReader} from "./interfaces/ISaleSettlement.sol";

/// @title SaleSettlement
/// @notice Splits a distributor's payment for a lot among its farmers; each share repays the
///         farmer's open loan first, the rest goes to the farmer.
/// @dev Invariants (docs/invariants.md):
///      1. The shares of a sale add up to the sale amount exactly (largest remainder).
///      2. Each share = repaid + paidOut + held, and repaid <= the loan's outstanding amount.
///      3. The contract's balance = totalHeld (nothing else stays here).
///      4. A lot's shares are frozen once one of its sales was settled.
///      5. Only the lot's maker commits its shares; only its holder or first buyer pays for it;
///         a recalled lot is never settled.
contract SaleSettlement is AccessControl, ReentrancyGuard, ISaleSettlement {
    using SafeERC20 for IERC20;

    bytes32 public constant SHARE_COMMITTER_ROLE = keccak256("SHARE_COMMITTER_ROLE");
    bytes32 public constant DISTRIBUTOR_ROLE = keccak256("DISTRIBUTOR_ROLE");
    /// @notice Most farmers per lot: bounds the settling loop's gas (see docs/disbursement.md).
    uint256 public constant MAX_FARMERS_PER_LOT = 100;

    IERC20 private immutable _TOKEN;
    ILoanFactory private immutable _FACTORY;
    ITeaTraceReader private immutable _TRACE;

    mapping(bytes32 lot => LotShares) private _lots;
    mapping(bytes32 farmerId => uint256) private _held;
    uint256 private _totalHeld;
    uint256 private _saleCount;

    /// @param token The payment token (the loan factory's token).
    /// @param factory The loan factory naming each farmer's open loan.
    /// @param teaTrace The traceability ledger (farmers, wallets, lots).
    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants the other roles).
    constructor(IERC20 token, ILoanFactory factory, ITeaTraceReader teaTrace, address admin) {
        if (
            address(token) == address(0) || address(factory) == address(0) || address(teaTrace) == address(0)
                || admin == address(0)
        ) revert SettlementZeroAddress();
        _TOKEN = token;
        _FACTORY = factory;
        _TRACE = teaTrace;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Grant `role` to `account`; nobody grants a role to itself.
    /// @dev Requires the role's admin role. Emits RoleGranted.
    /// @param role The role.
    /// @param account Receives the role; not the caller.
    function grantRole(bytes32 role, address account) public override onlyRole(getRoleAdmin(role)) {
        if (account == _msgSender()) revert SettlementSelfGrant(role, account);
        _grantRole(role, account);
    }

    /// @inheritdoc ISaleSettlement
    function commitShares(
        bytes32 lot,
        bytes32 dataHash,
        bytes32[] calldata farmerIds,
        uint256[] calldata weights
    ) external onlyRole(SHARE_COMMITTER_ROLE) {
        LotShares storage s = _lots[lot];
        if (s.sales != 0) revert SettlementSharesFrozen(lot, s.sales);
        if (_TRACE.lot(lot).state == 0) revert SettlementUnknownLot(lot);
        // The maker, not any committer: the holder changes as the lot moves, the maker never does.
        if (_TRACE.lotId(_msgSender(), dataHash) != lot) {
            revert SettlementNotLotMaker(lot, dataHash, _msgSender());
        }
        uint256 total = _checkShares(farmerIds, weights);
        bytes32 hash = _sharesHash(farmerIds, weights);
        s.sharesHash = hash;
        // Cannot truncate: at most 100 weights below 2**64 each, so total < 2**71.
        s.totalWeight = uint128(total);
        s.farmers = uint32(farmerIds.length);
        emit SharesCommitted(lot, _msgSender(), hash, total, farmerIds, weights);
    }

    /// @inheritdoc ISaleSettlement
    function settleSale(bytes32 lot, uint256 amount, bytes32[] calldata farmerIds, uint256[] calldata weights)
        external
        nonReentrant
        onlyRole(DISTRIBUTOR_ROLE)
        returns (uint256 saleId)
    {
        LotShares storage s = _lots[lot];
        _checkPayer(lot);
        _checkCommitted(lot, s.sharesHash, farmerIds, weights);
        if (amount == 0) revert SettlementZeroAmount(lot);
        uint256[] memory shares = _split(amount, weights, s.totalWeight);
        saleId = ++_saleCount;
        s.sales += 1;
        emit SaleSettled(lot, _msgSender(), saleId, amount, s.sharesHash);
        _TOKEN.safeTransferFrom(_msgSender(), address(this), amount);
        for (uint256 i; i < shares.length; ++i) {
            _distribute(saleId, farmerIds[i], shares[i]);
        }
    }

    /// @inheritdoc ISaleSettlement
    function claimHeld(bytes32 farmerId) external nonReentrant returns (uint256 amount) {
        amount = _held[farmerId];
        if (amount == 0) revert SettlementNothingHeld(farmerId);
        address wallet = _TRACE.farmer(farmerId).wallet;
        if (wallet == address(0)) revert SettlementNoWallet(farmerId);
        _held[farmerId] = 0;
        _totalHeld -= amount;
        emit HeldProceedsClaimed(farmerId, wallet, amount);
        _TOKEN.safeTransfer(wallet, amount);
    }

    /// @inheritdoc ISaleSettlement
    function lotShares(bytes32 lot) external view returns (LotShares memory) {
        return _lots[lot];
    }

    /// @inheritdoc ISaleSettlement
    function heldFor(bytes32 farmerId) external view returns (uint256) {
        return _held[farmerId];
    }

    /// @inheritdoc ISaleSettlement
    function totalHeld() external view returns (uint256) {
        return _totalHeld;
    }

    /// @inheritdoc ISaleSettlement
    function saleCount() external view returns (uint256) {
        return _saleCount;
    }

    /// @inheritdoc ISaleSettlement
    function splitAmount(uint256 amount, uint256[] calldata weights) external pure returns (uint256[] memory) {
        uint256 n = weights.length;
        if (n == 0 || n > MAX_FARMERS_PER_LOT) revert SettlementFarmerCount(n, MAX_FARMERS_PER_LOT);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            if (weights[i] == 0 || weights[i] > type(uint64).max) revert SettlementInvalidWeight(0, weights[i]);
            total += weights[i];
        }
        return _split(amount, weights, total);
    }

    /// @inheritdoc ISaleSettlement
    function sharesHash(bytes32[] calldata farmerIds, uint256[] calldata weights) external pure returns (bytes32) {
        return _sharesHash(farmerIds, weights);
    }

    /// @inheritdoc ISaleSettlement
    function bindings() external view returns (address token, address factory, address teaTrace) {
        return (address(_TOKEN), address(_FACTORY), address(_TRACE));
    }

    /// @dev Count, order, weights and registration of a share list; returns the total weight.
    function _checkShares(bytes32[] calldata farmerIds, uint256[] calldata weights)
        private
        view
        returns (uint256 total)
    {
        uint256 n = farmerIds.length;
        if (n != weights.length) revert SettlementLengthMismatch(n, weights.length);
        if (n == 0 || n > MAX_FARMERS_PER_LOT) revert SettlementFarmerCount(n, MAX_FARMERS_PER_LOT);
        for (uint256 i; i < n; ++i) {
            bytes32 id = farmerIds[i];
            if (i > 0 && id <= farmerIds[i - 1]) revert SettlementFarmerOrder(farmerIds[i - 1], id);
            if (weights[i] == 0 || weights[i] > type(uint64).max) revert SettlementInvalidWeight(id, weights[i]);
            if (_TRACE.farmer(id).cooperative == address(0)) revert SettlementUnknownFarmer(id);
            total += weights[i];
        }
    }

    /// @dev The caller holds the lot or bought it first, and the lot is not recalled.
    function _checkPayer(bytes32 lot) private view {
        ITeaTraceReader.LotInfo memory info = _TRACE.lot(lot);
        if (info.state == 0) revert SettlementUnknownLot(lot);
        if (info.recalled) revert SettlementLotRecalled(lot);
        address caller = _msgSender();
        if (info.holder == caller) return;
        address buyer = _TRACE.boughtBy(lot);
        if (buyer != caller) revert SettlementNotHolderOrBuyer(lot, info.holder, buyer, caller);
    }

    /// @dev The lists must hash to the committed shares.
    function _checkCommitted(
        bytes32 lot,
        bytes32 committed,
        bytes32[] calldata farmerIds,
        uint256[] calldata weights
    ) private pure {
        if (committed == bytes32(0)) revert SettlementNoShares(lot);
        bytes32 given = _sharesHash(farmerIds, weights);
        if (given != committed) revert SettlementSharesMismatch(lot, committed, given);
    }

    /// @dev Repay the farmer's open loan first, then pay (or hold) the rest.
    function _distribute(uint256 saleId, bytes32 farmerId, uint256 share) private {
        address escrow = _FACTORY.activeLoanOf(farmerId);
        uint256 repaid = escrow == address(0) ? 0 : Math.min(share, ILoanEscrow(escrow).outstanding());
        uint256 rest = share - repaid;
        address wallet = _TRACE.farmer(farmerId).wallet;
        uint256 held = wallet == address(0) ? rest : 0;
        if (held != 0) {
            _held[farmerId] += held;
            _totalHeld += held;
        }
        emit FarmerShareSettled(saleId, farmerId, escrow, share, repaid, rest - held, held);
        if (repaid != 0) {
            _TOKEN.forceApprove(escrow, repaid);
            ILoanEscrow(escrow).repay(repaid);
        }
        if (rest != held) _TOKEN.safeTransfer(wallet, rest);
    }

    /// @dev Largest-remainder split: floor(amount * w / total) each, then one more fen to the
    ///      `amount - sum(floors)` farmers with the largest remainders (ties: earlier index).
    ///      Sort keys pack remainder (< total < 2**71) above the inverted index (16 bits).
    function _split(uint256 amount, uint256[] calldata weights, uint256 total)
        private
        pure
        returns (uint256[] memory shares)
    {
        uint256 n = weights.length;
        shares = new uint256[](n);
        uint256[] memory keys = new uint256[](n);
        uint256 left = amount;
        for (uint256 i; i < n; ++i) {
            shares[i] = Math.mulDiv(amount, weights[i], total);
            left -= shares[i];
            keys[i] = (mulmod(amount, weights[i], total) << 16) | (0xffff - i);
        }
        _sort(keys, 0, int256(n) - 1);
        // left < n: the remainders add up to left * total and each is below total.
        for (uint256 k; k < left; ++k) {
            shares[0xffff - (keys[n - 1 - k] & 0xffff)] += 1;
        }
    }

    /// @dev In-place ascending quicksort of distinct keys (OpenZeppelin's Arrays.sort needs
    ///      mcopy, which shanghai lacks). Recurses into the smaller side, so depth <= log2(n).
    function _sort(uint256[] memory a, int256 lo, int256 hi) private pure {
        while (lo < hi) {
            uint256 pivot = a[uint256(lo + (hi - lo) / 2)];
            int256 i = lo;
            int256 j = hi;
            while (i <= j) {
                while (a[uint256(i)] < pivot) ++i;
                while (a[uint256(j)] > pivot) --j;
                if (i <= j) {
                    (a[uint256(i)], a[uint256(j)]) = (a[uint256(j)], a[uint256(i)]);
                    ++i;
                    --j;
                }
            }
            if (j - lo < hi - i) {
                _sort(a, lo, j);
                lo = i;
            } else {
                _sort(a, i, hi);
                hi = j;
            }
        }
    }

    /// @dev keccak256(abi.encode(farmerIds, weights)).
    function _sharesHash(bytes32[] calldata farmerIds, uint256[] calldata weights) private pure returns (bytes32) {
        return keccak256(abi.encode(farmerIds, weights));
    }
}
