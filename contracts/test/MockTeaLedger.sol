// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ITeaTraceReader} from "../interfaces/ISaleSettlement.sol";

/// @title MockTeaLedger
/// @notice TEST ONLY: the two TeaTrace views SaleSettlement reads, with open setters, so the
///         settlement tests do not depend on the full traceability workflow.
contract MockTeaLedger is ITeaTraceReader {
    mapping(bytes32 id => FarmerInfo) private _farmers;
    mapping(bytes32 id => LotInfo) private _lots;

    /// @notice Register or change a farmer.
    function setFarmer(bytes32 id, address cooperative, address wallet) external {
        _farmers[id] = FarmerInfo({cooperative: cooperative, wallet: wallet, active: true});
    }

    /// @notice Create or change a lot (state 1 = Held).
    function setLot(bytes32 id, address holder, uint64 grams) external {
        _lots[id] = LotInfo({holder: holder, grams: grams, state: 1, kind: 2, recalled: false});
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
