// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Errors, events and functions of the farmer consent registry.
/// @notice A farmer, through the wallet registered for it in TeaTrace, lets a lender read its
///         profile until an expiry, and may revoke that at any time. The farmer may send the
///         transaction itself or sign an EIP-712 message that anyone (e.g. the cooperative's
///         app) relays, so farmers need no gas.
interface IConsentRegistry {
    /// @notice The TeaTrace address given to the constructor is zero.
    error ConsentZeroTeaTrace();
    /// @notice No farmer is registered under this id.
    error ConsentUnknownFarmer(bytes32 farmer);
    /// @notice The farmer is deactivated and can grant no new consent.
    error ConsentFarmerInactive(bytes32 farmer);
    /// @notice `caller` is not the farmer's registered wallet `wallet` (zero if it has none).
    error ConsentNotFarmerWallet(bytes32 farmer, address wallet, address caller);
    /// @notice Consent to the zero address was requested.
    error ConsentZeroLender();
    /// @notice The expiry must lie in (now, now + MAX_CONSENT_DURATION].
    error ConsentInvalidExpiry(uint64 expiresAt, uint256 earliest, uint256 latest);
    /// @notice There is no unexpired consent of this farmer for this lender.
    error ConsentNotGranted(bytes32 farmer, address lender);
    /// @notice A signed request was relayed after its deadline.
    error ConsentSignatureExpired(uint256 deadline, uint256 blockTime);
    /// @notice The signature is not the farmer wallet's over this request, the farmer's current
    ///         wallet epoch and the wallet's current nonce.
    error ConsentInvalidSignature(bytes32 farmer, address wallet);

    /// @notice The farmer lets `lender` read its profile until `expiresAt` (unix seconds).
    event ConsentGranted(bytes32 indexed farmer, address indexed lender, address indexed wallet, uint64 expiresAt);
    /// @notice The farmer withdrew `lender`'s consent.
    event ConsentRevoked(bytes32 indexed farmer, address indexed lender, address indexed wallet);
    /// @notice `wallet` used up its signature nonce `nonce` without relaying anything.
    event ConsentNonceBurned(address indexed wallet, uint256 nonce);

    /// @notice Grant (or extend, or shorten) `lender`'s right to read the caller's farmer profile.
    /// @dev The caller must be the farmer's registered wallet; the farmer must be active.
    ///      Emits ConsentGranted.
    /// @param farmer The farmer's pseudonymous id in TeaTrace.
    /// @param lender The lender's address, not zero.
    /// @param expiresAt Unix time, in (now, now + MAX_CONSENT_DURATION].
    function grantConsent(bytes32 farmer, address lender, uint64 expiresAt) external;

    /// @notice Revoke `lender`'s unexpired consent.
    /// @dev The caller must be the farmer's registered wallet. Emits ConsentRevoked.
    /// @param farmer The farmer's pseudonymous id.
    /// @param lender The lender.
    function revokeConsent(bytes32 farmer, address lender) external;

    /// @notice Relay a consent the farmer's wallet signed (EIP-712 `Consent`).
    /// @dev Same rules as {grantConsent}; the signature covers TeaTrace's walletEpoch(farmer) and
    ///      the wallet's current nonce, which is then used up. Emits ConsentGranted.
    /// @param farmer The farmer's pseudonymous id.
    /// @param lender The lender.
    /// @param expiresAt Unix time the consent ends.
    /// @param deadline Unix time after which the signature may no longer be relayed.
    /// @param signature The wallet's signature (65-byte ECDSA).
    function grantConsentBySig(
        bytes32 farmer,
        address lender,
        uint64 expiresAt,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Relay a revocation the farmer's wallet signed (EIP-712 `Revocation`).
    /// @dev Same rules as {revokeConsent}. Emits ConsentRevoked.
    /// @param farmer The farmer's pseudonymous id.
    /// @param lender The lender.
    /// @param deadline Unix time after which the signature may no longer be relayed.
    /// @param signature The wallet's signature.
    function revokeConsentBySig(bytes32 farmer, address lender, uint256 deadline, bytes calldata signature)
        external;

    /// @notice Use up the caller's current signature nonce, so every request it signed over that
    ///         nonce and not yet relayed can never be relayed (withdrawing a signed consent before
    ///         its deadline). Requests are signed over the current nonce ({nonces}).
    /// @dev Anyone, for its own nonce. Emits ConsentNonceBurned.
    /// @return nonce The nonce used up.
    function burnNonce() external returns (uint256 nonce);

    /// @notice True while `lender` holds an unexpired consent of `farmer`.
    function hasConsent(bytes32 farmer, address lender) external view returns (bool);

    /// @notice When `lender`'s consent of `farmer` ends (0 if never granted or revoked).
    function consentExpiry(bytes32 farmer, address lender) external view returns (uint64);
}
