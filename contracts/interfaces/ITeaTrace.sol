// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Types, errors, events and functions of the tea traceability ledger.
/// @notice Cooperatives register pseudonymous farmers and their plots and record harvests;
///         processors turn lots into made tea under an on-chain mass balance; lots are shipped,
///         received and sold; inspectors attest quality and recall lots. Each lot keeps one
///         packed storage slot; everything else lives in events (see docs/traceability.md).
interface ITeaTrace {
    /// @notice Where a lot is in its life.
    enum LotState {
        None, // never created
        Held, // in the hands of `holder`
        InTransit, // shipped to `holder`, not yet received
        Consumed // used up as an input of a processing step
    }

    /// @notice What a lot contains.
    enum LotKind {
        None,
        FreshLeaf, // a harvest record: fresh leaf from one plot
        MadeTea // output of processing
    }

    /// @notice Outcome of validating one harvest record (see {checkHarvests}).
    enum HarvestCheck {
        Ok,
        Duplicate, // a lot with the same (cooperative, dataHash) exists: skipped, never recorded twice
        UnknownPlot, // the plot is not registered to that farmer
        NotFarmerCooperative, // the farmer belongs to another cooperative
        FarmerInactive,
        ZeroMass,
        UnknownGrade,
        PickedInFuture
    }

    /// @notice The one storage slot of a lot (160 + 64 + 8 + 8 + 8 bits).
    struct Lot {
        address holder;
        uint64 grams;
        LotState state;
        LotKind kind;
        bool recalled;
    }

    /// @notice A farmer to register: pseudonymous id and optional wallet (zero for none).
    struct FarmerRegistration {
        bytes32 farmer;
        address wallet;
    }

    /// @notice A plot to register to one of the caller's farmers.
    struct PlotRegistration {
        bytes32 plot;
        bytes32 farmer;
        uint32 areaCentiMu; // area in 0.01 mu (1 mu = 666.7 m2)
        uint16 variety; // tea variety code, 0 = unspecified
        bytes32 locationHash; // hash of the off-chain location record
    }

    /// @notice One picking of fresh leaf; `dataHash` (hash of the off-chain record) is also its
    ///         idempotency key: the lot id is `lotId(cooperative, dataHash)`.
    struct HarvestRecord {
        bytes32 farmer;
        bytes32 plot;
        uint64 grams;
        uint8 grade;
        uint64 pickedAt;
        bytes32 dataHash;
    }

    /// @notice One output lot of a processing step; its id is `lotId(processor, dataHash)`.
    struct ProcessOutput {
        uint64 grams;
        bytes32 dataHash;
    }

    /// @notice One quality attestation.
    struct QualityAttestation {
        bytes32 lot;
        uint8 grade;
        bool passed;
        bytes32 certificateHash;
    }

    /// @notice What is stored about a farmer, for other contracts and services.
    struct FarmerInfo {
        address cooperative;
        address wallet;
        bool active;
    }

    /// @notice What is stored about a plot.
    struct PlotInfo {
        bytes32 farmer;
        address cooperative;
        uint32 areaCentiMu;
        uint16 variety;
    }

    /// @notice An account tried to grant a role to itself.
    error TeaTraceSelfGrant(bytes32 role, address account);
    /// @notice The zero address was given where an account is required.
    error TeaTraceZeroAddress();
    /// @notice A zero farmer or plot id was given.
    error TeaTraceZeroId();
    /// @notice A maximum yield outside (0, 10000] basis points was requested.
    error TeaTraceInvalidYield(uint256 bps);
    /// @notice An empty batch was submitted.
    error TeaTraceEmptyBatch();
    /// @notice Two arrays that must be parallel have different lengths.
    error TeaTraceLengthMismatch(uint256 expected, uint256 actual);
    /// @notice `account` holds none of the cooperative, processor and distributor roles.
    error TeaTraceNotSupplyChainMember(address account);
    /// @notice The farmer id is already registered.
    error TeaTraceFarmerExists(bytes32 farmer);
    /// @notice No farmer is registered under this id.
    error TeaTraceUnknownFarmer(bytes32 farmer);
    /// @notice `caller` acted on a farmer who is a member of `cooperative`.
    error TeaTraceNotFarmerCooperative(bytes32 farmer, address cooperative, address caller);
    /// @notice The farmer is deactivated.
    error TeaTraceFarmerInactive(bytes32 farmer);
    /// @notice The farmer already has the requested active status.
    error TeaTraceFarmerStatusUnchanged(bytes32 farmer, bool active);
    /// @notice The plot id is already registered.
    error TeaTracePlotExists(bytes32 plot);
    /// @notice The plot is not registered to this farmer.
    error TeaTraceUnknownPlot(bytes32 farmer, bytes32 plot);
    /// @notice A plot with zero area was submitted.
    error TeaTraceZeroPlotArea(bytes32 plot);
    /// @notice A harvest record or process output with zero grams was submitted.
    error TeaTraceZeroMass(bytes32 dataHash);
    /// @notice A grade code outside 1..MAX_GRADE was submitted.
    error TeaTraceUnknownGrade(uint8 grade);
    /// @notice A harvest was dated after the block time (plus the allowed clock skew).
    error TeaTraceHarvestInFuture(bytes32 dataHash, uint64 pickedAt, uint256 blockTime);
    /// @notice No lot exists under this id.
    error TeaTraceUnknownLot(bytes32 lot);
    /// @notice A lot with this id already exists (process outputs must have new data hashes).
    error TeaTraceLotExists(bytes32 lot);
    /// @notice The lot was consumed by processing: no lot is ever spent twice.
    error TeaTraceLotAlreadyConsumed(bytes32 lot);
    /// @notice The lot is in transit to `consignee` and must be received first.
    error TeaTraceLotInTransit(bytes32 lot, address consignee);
    /// @notice The lot is not in transit, so it cannot be received.
    error TeaTraceLotNotInTransit(bytes32 lot, LotState state);
    /// @notice `caller` acted on a lot held by `holder`.
    error TeaTraceNotLotHolder(bytes32 lot, address holder, address caller);
    /// @notice The lot is recalled and may not move, be sold or be processed.
    error TeaTraceLotRecalled(bytes32 lot);
    /// @notice The lot is already recalled.
    error TeaTraceLotAlreadyRecalled(bytes32 lot);
    /// @notice Processing needs at least one input and one output.
    error TeaTraceEmptyProcess(uint256 inputs, uint256 outputs);
    /// @notice Output mass exceeds what the inputs allow: fresh leaf x max yield + made tea.
    error TeaTraceYieldExceeded(
        uint256 freshLeafGrams, uint256 madeTeaGrams, uint256 allowedGrams, uint256 outputGrams
    );
    /// @notice Shipments go only to another supply-chain member.
    error TeaTraceInvalidRecipient(address to);
    /// @notice A sale needs a buyer other than the seller and the zero address.
    error TeaTraceInvalidBuyer(address buyer);
    /// @notice Harvests may be delivered straight to `consignee` only from a cooperative it
    ///         accepts as a supplier, and only while it is a supply-chain member.
    error TeaTraceNotSupplier(address consignee, address cooperative);
    /// @notice A consignee accepts neither itself nor the zero address as a supplier.
    error TeaTraceInvalidSupplier(address cooperative);
    /// @notice A sale needs a price above zero.
    error TeaTraceZeroPrice(bytes32 lot);

    /// @notice The maximum fresh-leaf-to-made-tea yield changed.
    event MaxYieldChanged(uint256 previousBps, uint256 newBps);
    /// @notice A farmer joined `cooperative` under the pseudonymous id `farmer`.
    event FarmerRegistered(bytes32 indexed farmer, address indexed cooperative, address wallet);
    /// @notice The farmer's payout/consent wallet changed.
    event FarmerWalletChanged(bytes32 indexed farmer, address indexed previousWallet, address indexed wallet);
    /// @notice The farmer was deactivated: no new plots or harvests.
    event FarmerDeactivated(bytes32 indexed farmer, address indexed cooperative);
    /// @notice The farmer was reactivated.
    event FarmerReactivated(bytes32 indexed farmer, address indexed cooperative);
    /// @notice A plot was registered to a farmer.
    event PlotRegistered(
        bytes32 indexed plot,
        bytes32 indexed farmer,
        address indexed cooperative,
        uint256 areaCentiMu,
        uint256 variety,
        bytes32 locationHash
    );
    /// @notice A harvest lot of fresh leaf was recorded (held by the cooperative that sent it).
    event HarvestRecorded(
        bytes32 indexed lot,
        bytes32 indexed farmer,
        bytes32 indexed plot,
        uint256 grams,
        uint256 grade,
        uint256 pickedAt,
        bytes32 dataHash
    );
    /// @notice A harvest record was already on chain and was skipped.
    event HarvestSkipped(bytes32 indexed lot, bytes32 dataHash);
    /// @notice An input lot was used up by processing step `processId`.
    event LotConsumed(bytes32 indexed lot, bytes32 indexed processId, address indexed processor, uint256 grams);
    /// @notice An output lot of made tea was produced by processing step `processId`.
    event LotProduced(
        bytes32 indexed lot, bytes32 indexed processId, address indexed processor, uint256 grams, bytes32 dataHash
    );
    /// @notice A lot left `from` for `to`.
    /// @notice `consignee` starts (accepted) or stops taking harvests recorded straight to it
    ///         by `cooperative` ({recordDeliveries}).
    event SupplierSet(address indexed consignee, address indexed cooperative, bool accepted);
    event LotShipped(bytes32 indexed lot, address indexed from, address indexed to);
    /// @notice A shipped lot arrived at `receiver`.
    event LotReceived(bytes32 indexed lot, address indexed receiver);
    /// @notice A lot was sold; the buyer now holds it. Money settlement is separate.
    event LotSold(bytes32 indexed lot, address indexed seller, address indexed buyer, uint256 priceFen);
    /// @notice An inspector attested the quality of a lot.
    event QualityAttested(
        bytes32 indexed lot, address indexed inspector, uint256 grade, bool passed, bytes32 certificateHash
    );
    /// @notice A lot was recalled; its descendants are found through lineage queries.
    event LotRecalled(bytes32 indexed lot, address indexed inspector, bytes32 reasonHash);

    /// @notice Set the maximum yield of made tea from fresh leaf, in basis points.
    /// @dev Requires DEFAULT_ADMIN_ROLE. Emits MaxYieldChanged.
    /// @param bps New maximum, in (0, 10000].
    function setMaxYieldBps(uint16 bps) external;

    /// @notice Register one farmer as a member of the calling cooperative.
    /// @dev Requires COOPERATIVE_ROLE. Emits FarmerRegistered.
    /// @param farmer Pseudonymous id: a keyed hash of the national id, never personal data.
    /// @param wallet Pseudonymous wallet for sale proceeds and consent, or the zero address.
    function registerFarmer(bytes32 farmer, address wallet) external;

    /// @notice Register many farmers in one transaction.
    /// @dev Requires COOPERATIVE_ROLE. Emits FarmerRegistered per farmer.
    /// @param farmers Ids and optional wallets.
    function registerFarmers(FarmerRegistration[] calldata farmers) external;

    /// @notice Change the wallet of one of the caller's farmers (e.g. after a lost phone); every
    ///         call starts a new wallet epoch ({walletEpoch}).
    /// @dev Requires COOPERATIVE_ROLE and membership. Emits FarmerWalletChanged.
    /// @param farmer The farmer's id.
    /// @param wallet New wallet, or the zero address for none.
    function setFarmerWallet(bytes32 farmer, address wallet) external;

    /// @notice Deactivate one of the caller's farmers: no new plots or harvests.
    /// @dev Requires COOPERATIVE_ROLE and membership. Emits FarmerDeactivated.
    /// @param farmer The farmer's id.
    function deactivateFarmer(bytes32 farmer) external;

    /// @notice Reactivate one of the caller's farmers.
    /// @dev Requires COOPERATIVE_ROLE and membership. Emits FarmerReactivated.
    /// @param farmer The farmer's id.
    function reactivateFarmer(bytes32 farmer) external;

    /// @notice Register one plot to an active farmer of the calling cooperative.
    /// @dev Requires COOPERATIVE_ROLE. Plot ids are unique. Emits PlotRegistered.
    /// @param plot The plot.
    function registerPlot(PlotRegistration calldata plot) external;

    /// @notice Register many plots in one transaction.
    /// @dev Requires COOPERATIVE_ROLE. Emits PlotRegistered per plot.
    /// @param plots The plots.
    function registerPlots(PlotRegistration[] calldata plots) external;

    /// @notice Record harvest lots held by the calling cooperative. A record whose lot already
    ///         exists is skipped (HarvestSkipped), so re-submitting a batch never records twice;
    ///         any other invalid record reverts the whole batch with its error.
    /// @dev Requires COOPERATIVE_ROLE. Emits HarvestRecorded or HarvestSkipped per record.
    /// @param records Non-empty batch; each plot registered to its farmer, farmer an active member
    ///        of the caller, grams > 0, grade in 1..MAX_GRADE, pickedAt not in the future.
    /// @return recorded Number of new lots.
    function recordHarvests(HarvestRecord[] calldata records) external returns (uint256 recorded);

    /// @notice Record harvests delivered straight to `consignee` (the factory that bought the day's
    ///         leaf): each new lot is created held by the consignee, as if the cooperative had
    ///         shipped it and the consignee received it in this transaction, which the events
    ///         say. Duplicates and invalid records behave as in {recordHarvests}.
    /// @dev Requires COOPERATIVE_ROLE, and that `consignee` accepts the caller as a supplier
    ///      ({setSupplier}) and holds a supply-chain role. Emits HarvestRecorded, LotShipped and
    ///      LotReceived per new lot, or HarvestSkipped.
    /// @param records As for {recordHarvests}.
    /// @param consignee A supply-chain member accepting the caller as a supplier.
    /// @return recorded Number of new lots.
    function recordDeliveries(HarvestRecord[] calldata records, address consignee)
        external
        returns (uint256 recorded);

    /// @notice Accept (or stop accepting) harvests that `cooperative` records straight to the
    ///         caller: the consignee's standing agreement to take its members' leaf, so that no
    ///         cooperative can hand lots to a party that did not agree.
    /// @dev Requires a supply-chain role. Emits SupplierSet.
    /// @param cooperative Any address but the caller's and zero.
    /// @param accepted True to accept, false to stop.
    function setSupplier(address cooperative, bool accepted) external;

    /// @notice Whether `consignee` accepts harvests recorded straight to it by `cooperative`.
    function isSupplier(address consignee, address cooperative) external view returns (bool);

    /// @notice Consume whole input lots held by the caller and create made-tea output lots.
    ///         Total output grams <= fresh-leaf input grams x maxYieldBps / 10000 + made-tea input
    ///         grams. One input and several outputs is a split; several inputs, a merge.
    /// @dev Requires PROCESSOR_ROLE. Emits LotConsumed per input and LotProduced per output.
    /// @param inputs Distinct lots held by the caller, not recalled, not consumed.
    /// @param outputs Output lots with grams > 0 and new data hashes.
    /// @return processId keccak256 of the packed input ids (unique: inputs are spent once).
    function process(bytes32[] calldata inputs, ProcessOutput[] calldata outputs)
        external
        returns (bytes32 processId);

    /// @notice Ship a lot held by the caller to another supply-chain member.
    /// @dev Requires a supply-chain role. Emits LotShipped.
    /// @param lot A lot held by the caller, not recalled.
    /// @param to A cooperative, processor or distributor other than the caller.
    function ship(bytes32 lot, address to) external;

    /// @notice Ship many lots to one recipient.
    /// @dev Requires a supply-chain role. Emits LotShipped per lot.
    /// @param lots Lots held by the caller, not recalled.
    /// @param to A cooperative, processor or distributor other than the caller.
    function shipBatch(bytes32[] calldata lots, address to) external;

    /// @notice Receive a lot shipped to the caller. (`receive` is reserved in Solidity.)
    /// @dev Requires a supply-chain role. Emits LotReceived.
    /// @param lot A lot in transit to the caller.
    function receiveLot(bytes32 lot) external;

    /// @notice Receive many lots shipped to the caller.
    /// @dev Requires a supply-chain role. Emits LotReceived per lot.
    /// @param lots Lots in transit to the caller.
    function receiveBatch(bytes32[] calldata lots) external;

    /// @notice Record the sale of a lot; the buyer becomes its holder (and, at the lot's first
    ///         sale, its {boughtBy}).
    /// @dev Requires a supply-chain role. Emits LotSold.
    /// @param lot A lot held by the caller, not recalled.
    /// @param buyer Any address except the caller and zero.
    /// @param priceFen Price in fen, above zero.
    function sell(bytes32 lot, address buyer, uint256 priceFen) external;

    /// @notice Record the sale of many lots to one buyer.
    /// @dev Requires a supply-chain role. Emits LotSold per lot.
    /// @param lots Lots held by the caller, not recalled.
    /// @param buyer Any address except the caller and zero.
    /// @param pricesFen Price of each lot in fen, above zero; same length as `lots`.
    function sellBatch(bytes32[] calldata lots, address buyer, uint256[] calldata pricesFen) external;

    /// @notice Attest the quality of an existing lot.
    /// @dev Requires INSPECTOR_ROLE. Emits QualityAttested.
    /// @param attestation Lot, grade (1..MAX_GRADE), pass/fail and certificate hash.
    function attestQuality(QualityAttestation calldata attestation) external;

    /// @notice Attest many lots.
    /// @dev Requires INSPECTOR_ROLE. Emits QualityAttested per attestation.
    /// @param attestations The attestations.
    function attestQualityBatch(QualityAttestation[] calldata attestations) external;

    /// @notice Recall a lot: it may no longer move, be sold or be processed.
    /// @dev Requires INSPECTOR_ROLE. Emits LotRecalled.
    /// @param lot An existing lot not yet recalled.
    /// @param reasonHash Hash of the off-chain recall notice.
    function recall(bytes32 lot, bytes32 reasonHash) external;

    /// @notice Recall many lots for one reason (e.g. every live descendant of a bad lot).
    /// @dev Requires INSPECTOR_ROLE. Emits LotRecalled per lot.
    /// @param lots Existing lots not yet recalled.
    /// @param reasonHash Hash of the off-chain recall notice.
    function recallBatch(bytes32[] calldata lots, bytes32 reasonHash) external;

    /// @notice The id of the lot that `creator` creates from a record with `dataHash`.
    function lotId(address creator, bytes32 dataHash) external pure returns (bytes32);

    /// @notice The stored slot of a lot (state None if it does not exist).
    function lot(bytes32 id) external view returns (Lot memory);

    /// @notice The stored slots of many lots.
    function lots(bytes32[] calldata ids) external view returns (Lot[] memory);

    /// @notice A registered farmer (cooperative zero if unknown).
    function farmer(bytes32 id) external view returns (FarmerInfo memory);

    /// @notice How many times the farmer's wallet was changed (0 for a farmer never changed or
    ///         unknown). Signatures over a farmer's consent carry it, so a signature made before
    ///         a change is void after it, even if the old wallet is set again.
    function walletEpoch(bytes32 farmer) external view returns (uint256);

    /// @notice The first buyer of a lot (zero if it was never sold): the party that bought it
    ///         from the supply chain that made it, and so pays its farmers (SaleSettlement).
    function boughtBy(bytes32 lot) external view returns (address);

    /// @notice A registered plot (farmer zero if unknown).
    function plot(bytes32 id) external view returns (PlotInfo memory);

    /// @notice The current maximum yield of made tea from fresh leaf, in basis points.
    function maxYieldBps() external view returns (uint256);

    /// @notice Number of farmers ever registered.
    function farmerCount() external view returns (uint256);

    /// @notice Validate harvest records as `cooperative` would submit them at time `asOf`,
    ///         without sending anything: one status per record.
    /// @param cooperative The submitting cooperative.
    /// @param asOf Unix time to judge `pickedAt` against (the node's latest block may be old).
    /// @param records The records.
    function checkHarvests(address cooperative, uint256 asOf, HarvestRecord[] calldata records)
        external
        view
        returns (HarvestCheck[] memory);
}
