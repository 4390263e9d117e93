// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ITokenReceiverHook} from "./AttackCallbackToken.sol";

/// @title AttackMerchant
/// @notice TEST ONLY: a malicious payee (merchant, lender or farmer wallet). When tokens arrive
///         through AttackCallbackToken's hook it calls back into `target` with `payload` (e.g.
///         confirm the same order again, order another payment, return funds twice). In `bubble`
///         mode the re-entry's revert reverts the whole transaction; otherwise it is swallowed
///         and recorded, so tests can see the guard's error while the outer call succeeds.
contract AttackMerchant is ITokenReceiverHook {
    address public target;
    bytes public payload;
    bool public bubble;
    uint256 public attempts;
    bool public lastSucceeded;
    bytes public lastError;

    /// @notice Arm the attack: the next incoming transfer calls `target_` with `payload_`.
    function arm(address target_, bytes calldata payload_, bool bubble_) external {
        target = target_;
        payload = payload_;
        bubble = bubble_;
    }

    /// @notice Forward any call (lets the attacker act as farmer, approve tokens, etc.).
    function execute(address to, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory result) = to.call(data);
        if (!ok) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
        return result;
    }

    /// @inheritdoc ITokenReceiverHook
    function onTokenReceived(address, uint256) external {
        if (target == address(0)) return;
        address to = target;
        target = address(0); // one re-entry per arming
        attempts += 1;
        (bool ok, bytes memory result) = to.call(payload);
        lastSucceeded = ok;
        lastError = result;
        if (!ok && bubble) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
    }
}
