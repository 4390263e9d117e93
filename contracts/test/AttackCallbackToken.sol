// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice TEST ONLY: what a recipient contract implements to hear about incoming tokens.
interface ITokenReceiverHook {
    /// @notice Called by AttackCallbackToken after `amount` arrived from `from`.
    function onTokenReceived(address from, uint256 amount) external;
}

/// @title AttackCallbackToken
/// @notice TEST ONLY: an ERC-20 with an ERC-777-style receive hook. After every transfer to a
///         contract it calls `onTokenReceived` on the recipient, handing control to it in the
///         middle of the sender's function: the opening a reentrancy attack needs.
contract AttackCallbackToken is ERC20 {
    constructor() ERC20("Callback fen", "CBF") {}

    /// @notice 2 decimals, like the payment token.
    function decimals() public pure override returns (uint8) {
        return 2;
    }

    /// @notice Anyone may mint (test token).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @dev Move the balance, then call the recipient's hook. Contracts without the hook revert
    ///      with no data, which is ignored; a hook's own revert reason is bubbled up.
    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from == address(0) || to.code.length == 0) return;
        (bool ok, bytes memory reason) =
            to.call(abi.encodeCall(ITokenReceiverHook.onTokenReceived, (from, value)));
        if (!ok && reason.length != 0) {
            assembly {
                revert(add(reason, 32), mload(reason))
            }
        }
    }
}
