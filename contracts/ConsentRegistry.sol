// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IConsentRegistry} from "./interfaces/IConsentRegistry.sol";
import {ITeaTrace} from "./interfaces/ITeaTrace.sol";

/// @title ConsentRegistry
/// @notice Farmers' consents for lenders to read their profiles, with expiry and revocation.
///         Who speaks for a farmer is the wallet its cooperative registered in TeaTrace: changing
///         that wallet there immediately moves the right to grant and revoke.
/// @dev The EIP-712 domain is built here rather than with OpenZeppelin's EIP712: in OZ 5.7 that
///      imports Strings -> Bytes, which use the Cancun-only `mcopy`, and the project compiles for
///      shanghai (ganache's newest fork). Same construction: separator cached per chain id.
contract ConsentRegistry is IConsentRegistry, Nonces {
    /// @notice Longest consent a farmer can give at once.
    uint256 public constant MAX_CONSENT_DURATION = 730 days;

    /// @dev `walletEpoch` is TeaTrace's count of the farmer's wallet changes: a signature made
    ///      before a change never validates after it, even when the old wallet is set back.
    bytes32 public constant CONSENT_TYPEHASH = keccak256(
        "Consent(bytes32 farmer,address lender,uint64 expiresAt,uint256 walletEpoch,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REVOCATION_TYPEHASH = keccak256(
        "Revocation(bytes32 farmer,address lender,uint256 walletEpoch,uint256 nonce,uint256 deadline)"
    );
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _NAME_HASH = keccak256("TealedgerConsent");
    bytes32 private constant _VERSION_HASH = keccak256("1");

    ITeaTrace private immutable _teaTrace;
    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;
    mapping(bytes32 farmer => mapping(address lender => uint64 expiresAt)) private _expiries;

    /// @param teaTrace_ The ledger that registers farmers and their wallets.
    constructor(ITeaTrace teaTrace_) {
        if (address(teaTrace_) == address(0)) revert ConsentZeroTeaTrace();
        _teaTrace = teaTrace_;
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    /// @inheritdoc IConsentRegistry
    function grantConsent(bytes32 farmer, address lender, uint64 expiresAt) external {
        address wallet = _activeFarmerWallet(farmer);
        if (msg.sender != wallet) revert ConsentNotFarmerWallet(farmer, wallet, msg.sender);
        _grant(farmer, lender, expiresAt, wallet);
    }

    /// @inheritdoc IConsentRegistry
    function revokeConsent(bytes32 farmer, address lender) external {
        address wallet = _farmerWallet(farmer);
        if (msg.sender != wallet) revert ConsentNotFarmerWallet(farmer, wallet, msg.sender);
        _revoke(farmer, lender, wallet);
    }

    /// @inheritdoc IConsentRegistry
    function grantConsentBySig(
        bytes32 farmer,
        address lender,
        uint64 expiresAt,
        uint256 deadline,
        bytes calldata signature
    ) external {
        address wallet = _activeFarmerWallet(farmer);
        bytes32 structHash = keccak256(
            abi.encode(
                CONSENT_TYPEHASH, farmer, lender, expiresAt, _teaTrace.walletEpoch(farmer), _useNonce(wallet), deadline
            )
        );
        _checkSignature(farmer, wallet, structHash, deadline, signature);
        _grant(farmer, lender, expiresAt, wallet);
    }

    /// @inheritdoc IConsentRegistry
    function revokeConsentBySig(bytes32 farmer, address lender, uint256 deadline, bytes calldata signature)
        external
    {
        address wallet = _farmerWallet(farmer);
        bytes32 structHash = keccak256(
            abi.encode(REVOCATION_TYPEHASH, farmer, lender, _teaTrace.walletEpoch(farmer), _useNonce(wallet), deadline)
        );
        _checkSignature(farmer, wallet, structHash, deadline, signature);
        _revoke(farmer, lender, wallet);
    }

    /// @inheritdoc IConsentRegistry
    function burnNonce() external returns (uint256 nonce) {
        nonce = _useNonce(msg.sender);
        emit ConsentNonceBurned(msg.sender, nonce);
    }

    /// @inheritdoc IConsentRegistry
    function hasConsent(bytes32 farmer, address lender) external view returns (bool) {
        return _expiries[farmer][lender] > block.timestamp;
    }

    /// @inheritdoc IConsentRegistry
    function consentExpiry(bytes32 farmer, address lender) external view returns (uint64) {
        return _expiries[farmer][lender];
    }

    /// @notice The ledger whose farmer wallets speak for farmers.
    function teaTrace() external view returns (ITeaTrace) {
        return _teaTrace;
    }

    /// @notice The EIP-712 domain separator signatures are made over.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparator();
    }

    function _grant(bytes32 farmer, address lender, uint64 expiresAt, address wallet) private {
        if (lender == address(0)) revert ConsentZeroLender();
        uint256 latest = block.timestamp + MAX_CONSENT_DURATION;
        if (expiresAt <= block.timestamp || expiresAt > latest) {
            revert ConsentInvalidExpiry(expiresAt, block.timestamp + 1, latest);
        }
        _expiries[farmer][lender] = expiresAt;
        emit ConsentGranted(farmer, lender, wallet, expiresAt);
    }

    function _revoke(bytes32 farmer, address lender, address wallet) private {
        if (_expiries[farmer][lender] <= block.timestamp) revert ConsentNotGranted(farmer, lender);
        delete _expiries[farmer][lender];
        emit ConsentRevoked(farmer, lender, wallet);
    }

    /// @dev The farmer's wallet (zero if it has none); reverts if the farmer is unknown.
    function _farmerWallet(bytes32 farmer) private view returns (address) {
        ITeaTrace.FarmerInfo memory info = _teaTrace.farmer(farmer);
        if (info.cooperative == address(0)) revert ConsentUnknownFarmer(farmer);
        return info.wallet;
    }

    /// @dev As {_farmerWallet}, and the farmer must be active (granting needs membership).
    function _activeFarmerWallet(bytes32 farmer) private view returns (address) {
        ITeaTrace.FarmerInfo memory info = _teaTrace.farmer(farmer);
        if (info.cooperative == address(0)) revert ConsentUnknownFarmer(farmer);
        if (!info.active) revert ConsentFarmerInactive(farmer);
        return info.wallet;
    }

    function _checkSignature(
        bytes32 farmer,
        address wallet,
        bytes32 structHash,
        uint256 deadline,
        bytes calldata signature
    ) private view {
        if (block.timestamp > deadline) revert ConsentSignatureExpired(deadline, block.timestamp);
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err != ECDSA.RecoverError.NoError || wallet == address(0) || signer != wallet) {
            revert ConsentInvalidSignature(farmer, wallet);
        }
    }

    /// @dev The cached separator, rebuilt if the chain id changed (a fork).
    function _domainSeparator() private view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(_DOMAIN_TYPEHASH, _NAME_HASH, _VERSION_HASH, block.chainid, address(this)));
    }
}
