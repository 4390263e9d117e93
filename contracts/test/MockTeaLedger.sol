// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ITeaTraceReader} from "../interfaces/ISaleSettlement.sol";

/// @title MockTeaLedger
/// @notice TEST ONLY: the TeaTrace views SaleSettlement reads, with open setters, so the
///         settlement tests do not depend on the full traceability workflow.
contract MockTeaLedger is ITeaTraceReader {
    mapping(bytes32 id => FarmerInfo) private _farmers;
    mapping(bytes32 id => LotInfo) private _lots;
    mapping(bytes32 id => address) private _buyers;
    mapping(bytes32 id => uint256) private _epochs;

    /// @notice Register or change a farmer.
    function setFarmer(bytes32 id, address cooperative, address wallet) external {
        // like TeaTrace.setFarmerWallet: a changed wallet of a known farmer starts a new epoch
        if (_farmers[id].cooperative != address(0) && _farmers[id].wallet != wallet) ++_epochs[id];
        _farmers[id] = FarmerInfo({cooperative: cooperative, wallet: wallet, active: true});
    }

    /// @notice Create or change a lot (state 1 = Held).
    function setLot(bytes32 id, address holder, uint64 grams) external {
        _lots[id] = LotInfo({holder: holder, grams: grams, state: 1, kind: 2, recalled: false});
    }

    /// @notice Record the lot's first buyer.
    function setBuyer(bytes32 id, address buyer) external {
        _buyers[id] = buyer;
    }

    /// @notice Recall a lot.
    function setRecalled(bytes32 id) external {
        _lots[id].recalled = true;
    }

    /// @inheritdoc ITeaTraceReader
    function boughtBy(bytes32 id) external view returns (address) {
        return _buyers[id];
    }

    /// @inheritdoc ITeaTraceReader
    function lotId(address creator, bytes32 dataHash) external pure returns (bytes32) {
        return keccak256(abi.encode(creator, dataHash));
    }

    /// @notice TeaTrace.walletEpoch: wallet changes of the farmer so far.
    function walletEpoch(bytes32 id) external view returns (uint256) {
        return _epochs[id];
    }

    /// @inheritdoc ITeaTraceReader
    function farmer(bytes32 id) external view returns (FarmerInfo memory) {
        return _farmers[id];
    }

    /// @inheritdoc ITeaTraceReader
    function lot(bytes32 id) external view returns (LotInfo memory) {
        return _lots[id];
    }
}
