// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Errors and events of the payment token standing in for the digital yuan.
interface IPaymentToken {
    /// @notice Minting to the zero address was requested.
    error PaymentTokenZeroRecipient();
    /// @notice A mint of zero fen was requested.
    error PaymentTokenZeroAmount();

    /// @notice `amount` fen were issued to `to` by `minter`.
    event PaymentTokenMinted(address indexed minter, address indexed to, uint256 amount);
}
