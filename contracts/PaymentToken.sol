// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IPaymentToken} from "./interfaces/IPaymentToken.sol";

/// @title PaymentToken
/// @notice A 2-decimal ERC-20 (1 unit = 1 fen) standing in for the digital yuan in development;
///         a real deployment points the loan contracts at an existing stablecoin instead.
contract PaymentToken is ERC20, AccessControl, IPaymentToken {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param name_ Token name.
    /// @param symbol_ Token symbol.
    /// @param admin Receives the admin and minter roles.
    constructor(string memory name_, string memory symbol_, address admin) ERC20(name_, symbol_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Amounts are in fen.
    function decimals() public pure override returns (uint8) {
        return 2;
    }

    /// @notice Issue `amount` fen to `to`.
    /// @dev Requires MINTER_ROLE. Emits Transfer and PaymentTokenMinted.
    /// @param to Recipient, not the zero address.
    /// @param amount Amount in fen, greater than zero.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        if (to == address(0)) revert PaymentTokenZeroRecipient();
        if (amount == 0) revert PaymentTokenZeroAmount();
        _mint(to, amount);
        emit PaymentTokenMinted(msg.sender, to, amount);
    }
}
