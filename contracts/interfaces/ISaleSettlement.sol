// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The TeaTrace views sale settlement needs (a subset of ITeaTrace, ABI-identical).
interface ITeaTraceReader {
    /// @notice ITeaTrace.FarmerInfo.
    struct FarmerInfo {
        address cooperative; // zero if the farmer is unknown
        address wallet; // zero if the farmer has no wallet
        bool active;
    }

    /// @notice ITeaTrace.Lot (enums as their uint8 encoding).
    struct LotInfo {
        address holder;
        uint64 grams;
        uint8 state; // 0 = the lot does not exist
        uint8 kind;
        bool recalled;
    }

    /// @notice A registered farmer (cooperative zero if unknown).
    /// @param id The farmer's pseudonymous id.
    function farmer(bytes32 id) external view returns (FarmerInfo memory);

    /// @notice The stored slot of a lot (state 0 if it does not exist).
    /// @param id The lot id.
    function lot(bytes32 id) external view returns (LotInfo memory);

    /// @notice The lot's first buyer (zero if never sold).
    /// @param id The lot id.
    function boughtBy(bytes32 id) external view returns (address);

    /// @notice The id of the lot `creator` makes from a record with `dataHash`.
    function lotId(address creator, bytes32 dataHash) external pure returns (bytes32);
}

/// @title Types, errors, events and functions of sale settlement.
/// @notice A distributor pays for a lot through this contract; the payment is split among the
///         farmers whose harvests went into the lot, pro rata by contributed fresh-leaf weight,
///         with largest-remainder rounding so the shares add up to the payment to the fen. Each
///         share first repays the farmer's open loan (up to what is outstanding); the rest goes
///         to the farmer's TeaTrace wallet, or is held for the farmer if there is none.
///         Trust model: lineage walking is unbounded, so the party that made the lot (the
///         processor or cooperative, holding SHARE_COMMITTER_ROLE) commits each lot's
///         (farmerId, weight) list, computed off chain from TeaTrace lineage events; the list is
///         public in SharesCommitted, anyone can recompute it, and it is frozen once a sale of
///         the lot has been settled. Only the lot's holder or first buyer pays for it, and a
///         recalled lot is not settled.
interface ISaleSettlement {
    /// @notice The committed shares of one lot (the lists themselves are in SharesCommitted).
    struct LotShares {
        bytes32 sharesHash; // keccak256(abi.encode(farmerIds, weights)); zero if uncommitted
        uint128 totalWeight; // sum of weights (grams of fresh leaf)
        uint32 farmers; // number of farmers
        uint32 sales; // settled sales; the shares are frozen once this is above zero
    }

    /// @notice An account tried to grant a role to itself.
    error SettlementSelfGrant(bytes32 role, address account);
    /// @notice The zero address was given where an account is required.
    error SettlementZeroAddress();
    /// @notice TeaTrace knows no such lot.
    error SettlementUnknownLot(bytes32 lot);
    /// @notice TeaTrace knows no such farmer.
    error SettlementUnknownFarmer(bytes32 farmerId);
    /// @notice Farmer ids and weights must be parallel.
    error SettlementLengthMismatch(uint256 farmers, uint256 weights);
    /// @notice Between 1 and MAX_FARMERS_PER_LOT farmers per lot.
    error SettlementFarmerCount(uint256 count, uint256 max);
    /// @notice Farmer ids must be strictly ascending (no duplicates).
    error SettlementFarmerOrder(bytes32 previous, bytes32 farmerId);
    /// @notice Every weight must be in 1..type(uint64).max grams.
    error SettlementInvalidWeight(bytes32 farmerId, uint256 weight);
    /// @notice A lot's shares cannot change after one of its sales was settled.
    error SettlementSharesFrozen(bytes32 lot, uint256 sales);
    /// @notice No shares were committed for the lot.
    error SettlementNoShares(bytes32 lot);
    /// @notice The lists given do not hash to the committed shares.
    error SettlementSharesMismatch(bytes32 lot, bytes32 committed, bytes32 given);
    /// @notice A sale of zero fen.
    error SettlementZeroAmount(bytes32 lot);
    /// @notice `caller` did not make the lot: `lot` is not TeaTrace's lotId(caller, dataHash).
    error SettlementNotLotMaker(bytes32 lot, bytes32 dataHash, address caller);
    /// @notice `caller` neither holds the lot (`holder`) nor bought it first (`buyer`).
    error SettlementNotHolderOrBuyer(bytes32 lot, address holder, address buyer, address caller);
    /// @notice The lot is recalled: its proceeds are not settled (docs/disbursement.md).
    error SettlementLotRecalled(bytes32 lot);
    /// @notice Nothing is held for the farmer.
    error SettlementNothingHeld(bytes32 farmerId);
    /// @notice The farmer has no wallet in TeaTrace yet.
    error SettlementNoWallet(bytes32 farmerId);

    /// @notice A lot's farmer shares were committed (or re-committed before its first sale).
    event SharesCommitted(
        bytes32 indexed lot,
        address indexed committer,
        bytes32 sharesHash,
        uint256 totalWeight,
        bytes32[] farmerIds,
        uint256[] weights
    );
    /// @notice A distributor paid `amount` fen for a lot; FarmerShareSettled follows per farmer.
    event SaleSettled(
        bytes32 indexed lot, address indexed distributor, uint256 indexed saleId, uint256 amount, bytes32 sharesHash
    );
    /// @notice One farmer's share of a sale: `repaid` went to the loan `escrow`, `paidOut` to the
    ///         farmer's wallet, `held` stays here for the farmer (share = repaid + paidOut + held).
    event FarmerShareSettled(
        uint256 indexed saleId,
        bytes32 indexed farmerId,
        address indexed escrow,
        uint256 share,
        uint256 repaid,
        uint256 paidOut,
        uint256 held
    );
    /// @notice Held proceeds went to the farmer's wallet.
    event HeldProceedsClaimed(bytes32 indexed farmerId, address indexed wallet, uint256 amount);

    /// @notice Commit a lot's farmer shares (fresh-leaf grams per farmer through the lineage).
    ///         Only the party that made the lot commits (and corrects) its shares: it proves it
    ///         with the record's data hash, since TeaTrace's lot id is lotId(maker, dataHash).
    /// @dev Requires SHARE_COMMITTER_ROLE. Emits SharesCommitted.
    /// @param lot A lot known to TeaTrace whose sales were not yet settled.
    /// @param dataHash The data hash the caller made the lot from (lot = lotId(caller, dataHash)).
    /// @param farmerIds 1..MAX_FARMERS_PER_LOT registered farmers, strictly ascending.
    /// @param weights Grams per farmer, each in 1..type(uint64).max.
    function commitShares(
        bytes32 lot,
        bytes32 dataHash,
        bytes32[] calldata farmerIds,
        uint256[] calldata weights
    ) external;

    /// @notice Pay `amount` fen for `lot` and distribute it (the caller approves this contract).
    /// @dev Requires DISTRIBUTOR_ROLE; the caller holds the lot or bought it first (TeaTrace's
    ///      holder or boughtBy). The lists must be the committed ones. Emits SaleSettled and
    ///      FarmerShareSettled per farmer (plus the escrows' repayment events).
    /// @param lot A lot with committed shares, not recalled.
    /// @param amount Fen, > 0.
    /// @param farmerIds The committed farmer ids.
    /// @param weights The committed weights.
    /// @return saleId Sequential from 1.
    function settleSale(bytes32 lot, uint256 amount, bytes32[] calldata farmerIds, uint256[] calldata weights)
        external
        returns (uint256 saleId);

    /// @notice Send proceeds held for a farmer to the wallet TeaTrace now names.
    /// @dev Anyone; the money goes only to the farmer's wallet. Emits HeldProceedsClaimed.
    /// @param farmerId A farmer with held proceeds and a wallet.
    /// @return amount Fen sent.
    function claimHeld(bytes32 farmerId) external returns (uint256 amount);

    /// @notice The committed shares of `lot`.
    /// @param lot The lot id.
    function lotShares(bytes32 lot) external view returns (LotShares memory);

    /// @notice Proceeds held for `farmerId` (no wallet at settlement time).
    /// @param farmerId The farmer's pseudonymous id.
    function heldFor(bytes32 farmerId) external view returns (uint256);

    /// @notice Sum of all held proceeds (the contract's balance when nobody sent tokens directly).
    function totalHeld() external view returns (uint256);

    /// @notice Number of settled sales.
    function saleCount() external view returns (uint256);

    /// @notice The largest-remainder split of `amount` by `weights` (what settleSale pays).
    /// @param amount Fen to split.
    /// @param weights 1..MAX_FARMERS_PER_LOT weights, each in 1..type(uint64).max.
    function splitAmount(uint256 amount, uint256[] calldata weights) external pure returns (uint256[] memory);

    /// @notice keccak256(abi.encode(farmerIds, weights)), the committed shares hash.
    /// @param farmerIds The farmer ids.
    /// @param weights Their weights.
    function sharesHash(bytes32[] calldata farmerIds, uint256[] calldata weights) external pure returns (bytes32);

    /// @notice The payment token, loan factory and TeaTrace this contract uses.
    function bindings() external view returns (address token, address factory, address teaTrace);
}
