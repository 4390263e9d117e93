// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IMerchantRegistry} from "./interfaces/IMerchantRegistry.sol";

/// @title MerchantRegistry
/// @notice Merchants approved per spending category, with expiry and revocation.
/// @dev Invariants (docs/invariants.md):
///      1. `isApproved(m, c)` is true only between an approval and the earlier of its expiry and a
///         revocation; loan escrows ask it at every payment, so no merchant is paid outside its
///         category or after revocation or expiry.
///      2. Approvals exist only for registered categories.
contract MerchantRegistry is AccessControl, IMerchantRegistry {
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");

    mapping(bytes32 category => bool) private _categories;
    mapping(address merchant => mapping(bytes32 category => Approval)) private _approvals;

    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants REGISTRAR_ROLE).
    constructor(address admin) {
        if (admin == address(0)) revert MerchantRegistryZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Grant `role` to `account`; nobody grants a role to itself.
    /// @dev Requires the role's admin role. Emits RoleGranted.
    /// @param role The role.
    /// @param account Receives the role; not the caller.
    function grantRole(bytes32 role, address account) public override onlyRole(getRoleAdmin(role)) {
        if (account == _msgSender()) revert MerchantRegistrySelfGrant(role, account);
        _grantRole(role, account);
    }

    /// @inheritdoc IMerchantRegistry
    function registerCategory(string calldata name)
        external
        onlyRole(REGISTRAR_ROLE)
        returns (bytes32 category)
    {
        if (bytes(name).length == 0) revert MerchantRegistryEmptyCategoryName();
        category = keccak256(bytes(name));
        if (_categories[category]) revert MerchantRegistryCategoryExists(category);
        _categories[category] = true;
        emit CategoryRegistered(category, _msgSender(), name);
    }

    /// @inheritdoc IMerchantRegistry
    function approveMerchant(address merchant, bytes32 category, uint64 expiresAt)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        if (merchant == address(0)) revert MerchantRegistryZeroAddress();
        if (!_categories[category]) revert MerchantRegistryUnknownCategory(category);
        if (expiresAt <= block.timestamp) {
            revert MerchantRegistryExpiryNotInFuture(merchant, category, expiresAt, block.timestamp);
        }
        _approvals[merchant][category] =
            Approval({approvedAt: uint64(block.timestamp), expiresAt: expiresAt, revoked: false});
        emit MerchantApproved(merchant, category, _msgSender(), expiresAt);
    }

    /// @inheritdoc IMerchantRegistry
    function revokeMerchant(address merchant, bytes32 category, bytes32 reasonHash)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        if (!_isApproved(merchant, category)) revert MerchantRegistryNotApproved(merchant, category);
        _approvals[merchant][category].revoked = true;
        emit MerchantRevoked(merchant, category, _msgSender(), reasonHash);
    }

    /// @inheritdoc IMerchantRegistry
    function isApproved(address merchant, bytes32 category) external view returns (bool) {
        return _isApproved(merchant, category);
    }

    /// @inheritdoc IMerchantRegistry
    function approval(address merchant, bytes32 category) external view returns (Approval memory) {
        return _approvals[merchant][category];
    }

    /// @inheritdoc IMerchantRegistry
    function isCategory(bytes32 category) external view returns (bool) {
        return _categories[category];
    }

    /// @inheritdoc IMerchantRegistry
    function categoryId(string calldata name) external pure returns (bytes32) {
        return keccak256(bytes(name));
    }

    /// @dev Approved, not revoked, not yet expired (one storage slot).
    function _isApproved(address merchant, bytes32 category) private view returns (bool) {
        Approval storage a = _approvals[merchant][category];
        return !a.revoked && block.timestamp < a.expiresAt;
    }
}
