// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Types, errors, events and functions of the approved-merchant registry.
/// @notice A registrar approves merchants (fertilizer, seedling, equipment, labour-service
///         suppliers, ...) per spending category, each approval with an expiry; approvals can be
///         revoked. Loan escrows pay a merchant only while it is approved for the category.
///         A category id is keccak256 of its name, e.g. keccak256("fertilizer").
interface IMerchantRegistry {
    /// @notice One merchant's approval for one category (all zero if never approved).
    struct Approval {
        uint64 approvedAt; // block time of the latest approval or renewal
        uint64 expiresAt; // approved while block.timestamp < expiresAt
        bool revoked;
    }

    /// @notice An account tried to grant a role to itself.
    error MerchantRegistrySelfGrant(bytes32 role, address account);
    /// @notice The zero address was given where an account is required.
    error MerchantRegistryZeroAddress();
    /// @notice A category name was empty.
    error MerchantRegistryEmptyCategoryName();
    /// @notice The category is already registered.
    error MerchantRegistryCategoryExists(bytes32 category);
    /// @notice The category was never registered.
    error MerchantRegistryUnknownCategory(bytes32 category);
    /// @notice An approval must expire after the current block time.
    error MerchantRegistryExpiryNotInFuture(
        address merchant, bytes32 category, uint256 expiresAt, uint256 blockTime
    );
    /// @notice The merchant is not currently approved for the category (never, expired or revoked).
    error MerchantRegistryNotApproved(address merchant, bytes32 category);

    /// @notice A spending category `category` = keccak256(`name`) was registered.
    event CategoryRegistered(bytes32 indexed category, address indexed registrar, string name);
    /// @notice `merchant` was approved (or renewed) for `category` until `expiresAt`.
    event MerchantApproved(
        address indexed merchant, bytes32 indexed category, address indexed registrar, uint256 expiresAt
    );
    /// @notice `merchant`'s approval for `category` was revoked.
    event MerchantRevoked(
        address indexed merchant, bytes32 indexed category, address indexed registrar, bytes32 reasonHash
    );

    /// @notice Register a spending category by name.
    /// @dev Requires REGISTRAR_ROLE. Emits CategoryRegistered.
    /// @param name Non-empty, not yet registered, e.g. "fertilizer".
    /// @return category keccak256(bytes(name)).
    function registerCategory(string calldata name) external returns (bytes32 category);

    /// @notice Approve `merchant` for `category` until `expiresAt`; approving again renews the
    ///         approval and lifts an earlier revocation.
    /// @dev Requires REGISTRAR_ROLE. Emits MerchantApproved.
    /// @param merchant The merchant's payout address, not zero.
    /// @param category A registered category.
    /// @param expiresAt Unix time after the current block time.
    function approveMerchant(address merchant, bytes32 category, uint64 expiresAt) external;

    /// @notice Revoke a current approval; escrows stop paying the merchant in that category at once.
    /// @dev Requires REGISTRAR_ROLE. Emits MerchantRevoked.
    /// @param merchant A merchant currently approved for `category`.
    /// @param category The category.
    /// @param reasonHash Hash of the off-chain revocation notice.
    function revokeMerchant(address merchant, bytes32 category, bytes32 reasonHash) external;

    /// @notice True if `merchant` is approved for `category` now: approved, not revoked, not expired.
    /// @param merchant The merchant's payout address.
    /// @param category The category id.
    function isApproved(address merchant, bytes32 category) external view returns (bool);

    /// @notice The stored approval record of `merchant` for `category`.
    /// @param merchant The merchant's payout address.
    /// @param category The category id.
    function approval(address merchant, bytes32 category) external view returns (Approval memory);

    /// @notice True if `category` was registered.
    /// @param category The category id.
    function isCategory(bytes32 category) external view returns (bool);

    /// @notice The category id of `name`: keccak256(bytes(name)).
    /// @param name The category's name.
    function categoryId(string calldata name) external pure returns (bytes32);
}
