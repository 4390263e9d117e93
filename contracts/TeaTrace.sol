// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {ITeaTrace} from "./interfaces/ITeaTrace.sol";

/// @title TeaTrace
/// @notice The tea traceability ledger: farmers, plots, harvest lots, processing under a mass
///         balance, shipment, sale, quality attestation and recall.
/// @dev Invariants (docs/traceability.md):
///      1. A lot is created once: its id is keccak256(creator, dataHash) and creation requires
///         state None, so a record submitted twice is recorded once.
///      2. A lot is consumed at most once: only a Held lot can be consumed, and Consumed is final.
///      3. Made tea produced by a step <= fresh-leaf input x maxYieldBps / 10000 + made-tea input.
///      4. Only the holder moves, sells or processes a lot, and never a recalled one.
///      5. A harvest comes from a plot registered to an active farmer of the recording cooperative.
contract TeaTrace is AccessControl, ITeaTrace {
    bytes32 public constant COOPERATIVE_ROLE = keccak256("COOPERATIVE_ROLE");
    bytes32 public constant PROCESSOR_ROLE = keccak256("PROCESSOR_ROLE");
    bytes32 public constant DISTRIBUTOR_ROLE = keccak256("DISTRIBUTOR_ROLE");
    bytes32 public constant INSPECTOR_ROLE = keccak256("INSPECTOR_ROLE");

    /// @notice Grade codes run from 1 (special grade) to MAX_GRADE.
    uint8 public constant MAX_GRADE = 5;
    /// @notice Basis-point denominator of the yield ratio.
    uint256 public constant BPS = 10_000;
    /// @notice How far a harvest's `pickedAt` may run ahead of the block time (clock skew).
    uint256 public constant MAX_CLOCK_SKEW = 15 minutes;

    /// @dev A farmer: two slots, read only off the hot path. The epoch shares the wallet's slot,
    ///      so a wallet change writes one slot.
    struct Farmer {
        address cooperative;
        uint32 index; // bit position in _activeFarmers
        address wallet;
        uint64 walletEpoch; // wallet changes so far (see {walletEpoch})
    }

    /// @dev A plot, keyed by (farmer, plot) so that the one slot read while recording a harvest
    ///      proves that the plot belongs to the farmer and names the cooperative and activity bit.
    struct Plot {
        address cooperative;
        uint32 farmerIndex;
        uint32 areaCentiMu;
        uint16 variety;
    }

    mapping(bytes32 id => Lot) private _lots;
    mapping(bytes32 farmer => Farmer) private _farmers;
    mapping(bytes32 farmer => mapping(bytes32 plot => Plot)) private _plots;
    mapping(bytes32 plot => bytes32 farmer) private _plotFarmers;
    /// @dev The first buyer of each sold lot (see {boughtBy}).
    mapping(bytes32 lot => address buyer) private _firstBuyers;
    /// @dev Bit `index` set = farmer active; farmers registered together share words, so a
    ///      batch of harvests reads each word cold once.
    mapping(uint256 word => uint256 bits) private _activeFarmers;
    /// @dev Cooperatives each consignee accepts harvests from ({recordDeliveries}).
    mapping(address consignee => mapping(address cooperative => bool)) private _suppliers;
    uint32 private _farmerCount;
    uint16 private _maxYieldBps;

    /// @dev Reverts unless the caller holds the cooperative, processor or distributor role.
    modifier onlySupplyChain() {
        _checkSupplyChainMember(_msgSender());
        _;
    }

    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants every other role).
    /// @param maxYieldBps_ Maximum made-tea yield from fresh leaf, e.g. 3000 (30%).
    constructor(address admin, uint16 maxYieldBps_) {
        if (admin == address(0)) revert TeaTraceZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setMaxYield(maxYieldBps_);
    }

    // ------------------------------------------------------------------ administration

    /// @notice Grant `role` to `account`; nobody grants a role to itself.
    /// @dev Requires the role's admin role. Emits RoleGranted.
    /// @param role The role.
    /// @param account Receives the role; not the caller.
    function grantRole(bytes32 role, address account) public override onlyRole(getRoleAdmin(role)) {
        if (account == _msgSender()) revert TeaTraceSelfGrant(role, account);
        _grantRole(role, account);
    }

    /// @inheritdoc ITeaTrace
    function setMaxYieldBps(uint16 bps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMaxYield(bps);
    }

    // ------------------------------------------------------------------ farmers and plots

    /// @inheritdoc ITeaTrace
    function registerFarmer(bytes32 farmer_, address wallet) external onlyRole(COOPERATIVE_ROLE) {
        uint32 index = _farmerCount;
        _registerFarmer(farmer_, wallet, index);
        _farmerCount = index + 1;
    }

    /// @inheritdoc ITeaTrace
    function registerFarmers(FarmerRegistration[] calldata farmers) external onlyRole(COOPERATIVE_ROLE) {
        if (farmers.length == 0) revert TeaTraceEmptyBatch();
        uint32 index = _farmerCount;
        for (uint256 i; i < farmers.length; ++i) {
            _registerFarmer(farmers[i].farmer, farmers[i].wallet, index);
            ++index; // checked: more than 2^32 farmers reverts
        }
        _farmerCount = index;
    }

    /// @inheritdoc ITeaTrace
    function setFarmerWallet(bytes32 farmer_, address wallet) external onlyRole(COOPERATIVE_ROLE) {
        Farmer storage f = _ownFarmer(farmer_);
        address previous = f.wallet;
        f.wallet = wallet;
        // Every change, even back to an earlier wallet, starts a new epoch: signatures carry the
        // epoch, so nothing signed before the change is valid after it.
        ++f.walletEpoch;
        emit FarmerWalletChanged(farmer_, previous, wallet);
    }

    /// @inheritdoc ITeaTrace
    function deactivateFarmer(bytes32 farmer_) external onlyRole(COOPERATIVE_ROLE) {
        _setActive(farmer_, false);
        emit FarmerDeactivated(farmer_, _msgSender());
    }

    /// @inheritdoc ITeaTrace
    function reactivateFarmer(bytes32 farmer_) external onlyRole(COOPERATIVE_ROLE) {
        _setActive(farmer_, true);
        emit FarmerReactivated(farmer_, _msgSender());
    }

    /// @inheritdoc ITeaTrace
    function registerPlot(PlotRegistration calldata plot_) external onlyRole(COOPERATIVE_ROLE) {
        _registerPlot(plot_);
    }

    /// @inheritdoc ITeaTrace
    function registerPlots(PlotRegistration[] calldata plots) external onlyRole(COOPERATIVE_ROLE) {
        if (plots.length == 0) revert TeaTraceEmptyBatch();
        for (uint256 i; i < plots.length; ++i) {
            _registerPlot(plots[i]);
        }
    }

    // ------------------------------------------------------------------ harvests

    /// @inheritdoc ITeaTrace
    function recordHarvests(HarvestRecord[] calldata records)
        external
        onlyRole(COOPERATIVE_ROLE)
        returns (uint256 recorded)
    {
        recorded = _recordHarvests(records, _msgSender());
    }

    /// @inheritdoc ITeaTrace
    function recordDeliveries(HarvestRecord[] calldata records, address consignee)
        external
        onlyRole(COOPERATIVE_ROLE)
        returns (uint256 recorded)
    {
        if (!_suppliers[consignee][_msgSender()] || !_isSupplyChainMember(consignee)) {
            revert TeaTraceNotSupplier(consignee, _msgSender());
        }
        recorded = _recordHarvests(records, consignee);
    }

    /// @inheritdoc ITeaTrace
    function setSupplier(address cooperative, bool accepted) external onlySupplyChain {
        if (cooperative == address(0) || cooperative == _msgSender()) revert TeaTraceInvalidSupplier(cooperative);
        _suppliers[_msgSender()][cooperative] = accepted;
        emit SupplierSet(_msgSender(), cooperative, accepted);
    }

    // ------------------------------------------------------------------ processing

    /// @inheritdoc ITeaTrace
    function process(bytes32[] calldata inputs, ProcessOutput[] calldata outputs)
        external
        onlyRole(PROCESSOR_ROLE)
        returns (bytes32 processId)
    {
        if (inputs.length == 0 || outputs.length == 0) revert TeaTraceEmptyProcess(inputs.length, outputs.length);
        processId = keccak256(abi.encodePacked(inputs));
        (uint256 freshGrams, uint256 madeGrams) = _consumeInputs(inputs, processId);
        _checkYield(freshGrams, madeGrams, outputs);
        _produceOutputs(outputs, processId);
    }

    // ------------------------------------------------------------------ movement and sale

    /// @inheritdoc ITeaTrace
    function ship(bytes32 lot_, address to) external onlySupplyChain {
        _checkRecipient(to);
        _ship(lot_, to);
    }

    /// @inheritdoc ITeaTrace
    function shipBatch(bytes32[] calldata lots_, address to) external onlySupplyChain {
        if (lots_.length == 0) revert TeaTraceEmptyBatch();
        _checkRecipient(to);
        for (uint256 i; i < lots_.length; ++i) {
            _ship(lots_[i], to);
        }
    }

    /// @inheritdoc ITeaTrace
    function receiveLot(bytes32 lot_) external onlySupplyChain {
        _receive(lot_);
    }

    /// @inheritdoc ITeaTrace
    function receiveBatch(bytes32[] calldata lots_) external onlySupplyChain {
        if (lots_.length == 0) revert TeaTraceEmptyBatch();
        for (uint256 i; i < lots_.length; ++i) {
            _receive(lots_[i]);
        }
    }

    /// @inheritdoc ITeaTrace
    function sell(bytes32 lot_, address buyer, uint256 priceFen) external onlySupplyChain {
        _checkBuyer(buyer);
        _sell(lot_, buyer, priceFen);
    }

    /// @inheritdoc ITeaTrace
    function sellBatch(bytes32[] calldata lots_, address buyer, uint256[] calldata pricesFen)
        external
        onlySupplyChain
    {
        if (lots_.length == 0) revert TeaTraceEmptyBatch();
        if (pricesFen.length != lots_.length) revert TeaTraceLengthMismatch(lots_.length, pricesFen.length);
        _checkBuyer(buyer);
        for (uint256 i; i < lots_.length; ++i) {
            _sell(lots_[i], buyer, pricesFen[i]);
        }
    }

    // ------------------------------------------------------------------ quality and recall

    /// @inheritdoc ITeaTrace
    function attestQuality(QualityAttestation calldata attestation) external onlyRole(INSPECTOR_ROLE) {
        _attest(attestation);
    }

    /// @inheritdoc ITeaTrace
    function attestQualityBatch(QualityAttestation[] calldata attestations) external onlyRole(INSPECTOR_ROLE) {
        if (attestations.length == 0) revert TeaTraceEmptyBatch();
        for (uint256 i; i < attestations.length; ++i) {
            _attest(attestations[i]);
        }
    }

    /// @inheritdoc ITeaTrace
    function recall(bytes32 lot_, bytes32 reasonHash) external onlyRole(INSPECTOR_ROLE) {
        _recall(lot_, reasonHash);
    }

    /// @inheritdoc ITeaTrace
    function recallBatch(bytes32[] calldata lots_, bytes32 reasonHash) external onlyRole(INSPECTOR_ROLE) {
        if (lots_.length == 0) revert TeaTraceEmptyBatch();
        for (uint256 i; i < lots_.length; ++i) {
            _recall(lots_[i], reasonHash);
        }
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ITeaTrace
    function lotId(address creator, bytes32 dataHash) external pure returns (bytes32) {
        return _lotId(creator, dataHash);
    }

    /// @inheritdoc ITeaTrace
    function lot(bytes32 id) external view returns (Lot memory) {
        return _lots[id];
    }

    /// @inheritdoc ITeaTrace
    function lots(bytes32[] calldata ids) external view returns (Lot[] memory found) {
        found = new Lot[](ids.length);
        for (uint256 i; i < ids.length; ++i) {
            found[i] = _lots[ids[i]];
        }
    }

    /// @inheritdoc ITeaTrace
    function farmer(bytes32 id) external view returns (FarmerInfo memory) {
        Farmer storage f = _farmers[id];
        bool active = f.cooperative != address(0) && _isActive(f.index);
        return FarmerInfo({cooperative: f.cooperative, wallet: f.wallet, active: active});
    }

    /// @inheritdoc ITeaTrace
    function walletEpoch(bytes32 id) external view returns (uint256) {
        return _farmers[id].walletEpoch;
    }

    /// @inheritdoc ITeaTrace
    function isSupplier(address consignee, address cooperative) external view returns (bool) {
        return _suppliers[consignee][cooperative];
    }

    /// @inheritdoc ITeaTrace
    function boughtBy(bytes32 id) external view returns (address) {
        return _firstBuyers[id];
    }

    /// @inheritdoc ITeaTrace
    function plot(bytes32 id) external view returns (PlotInfo memory) {
        bytes32 owner = _plotFarmers[id];
        Plot storage p = _plots[owner][id];
        return PlotInfo({farmer: owner, cooperative: p.cooperative, areaCentiMu: p.areaCentiMu, variety: p.variety});
    }

    /// @inheritdoc ITeaTrace
    function maxYieldBps() external view returns (uint256) {
        return _maxYieldBps;
    }

    /// @inheritdoc ITeaTrace
    function farmerCount() external view returns (uint256) {
        return _farmerCount;
    }

    /// @inheritdoc ITeaTrace
    function checkHarvests(address cooperative, uint256 asOf, HarvestRecord[] calldata records)
        external
        view
        returns (HarvestCheck[] memory checks)
    {
        checks = new HarvestCheck[](records.length);
        for (uint256 i; i < records.length; ++i) {
            HarvestRecord memory r = records[i];
            checks[i] = _checkHarvest(cooperative, _lotId(cooperative, r.dataHash), r, asOf);
        }
    }

    // ------------------------------------------------------------------ private: farmers, plots

    function _setMaxYield(uint16 bps) private {
        if (bps == 0 || bps > BPS) revert TeaTraceInvalidYield(bps);
        uint256 previous = _maxYieldBps;
        _maxYieldBps = bps;
        emit MaxYieldChanged(previous, bps);
    }

    function _registerFarmer(bytes32 id, address wallet, uint32 index) private {
        if (id == bytes32(0)) revert TeaTraceZeroId();
        Farmer storage f = _farmers[id];
        if (f.cooperative != address(0)) revert TeaTraceFarmerExists(id);
        address cooperative = _msgSender();
        f.cooperative = cooperative;
        f.index = index;
        if (wallet != address(0)) f.wallet = wallet;
        _activeFarmers[index >> 8] |= 1 << (index & 0xff);
        emit FarmerRegistered(id, cooperative, wallet);
    }

    /// @dev The caller's own farmer, or revert.
    function _ownFarmer(bytes32 id) private view returns (Farmer storage f) {
        f = _farmers[id];
        address cooperative = f.cooperative;
        if (cooperative == address(0)) revert TeaTraceUnknownFarmer(id);
        if (cooperative != _msgSender()) revert TeaTraceNotFarmerCooperative(id, cooperative, _msgSender());
    }

    function _setActive(bytes32 id, bool active) private {
        uint32 index = _ownFarmer(id).index;
        if (_isActive(index) == active) revert TeaTraceFarmerStatusUnchanged(id, active);
        _activeFarmers[index >> 8] ^= 1 << (index & 0xff);
    }

    function _isActive(uint32 index) private view returns (bool) {
        return _activeFarmers[index >> 8] & (1 << (index & 0xff)) != 0;
    }

    function _registerPlot(PlotRegistration calldata p) private {
        if (p.plot == bytes32(0)) revert TeaTraceZeroId();
        Farmer storage f = _ownFarmer(p.farmer);
        uint32 farmerIndex = f.index;
        if (!_isActive(farmerIndex)) revert TeaTraceFarmerInactive(p.farmer);
        if (_plotFarmers[p.plot] != bytes32(0)) revert TeaTracePlotExists(p.plot);
        if (p.areaCentiMu == 0) revert TeaTraceZeroPlotArea(p.plot);
        _plotFarmers[p.plot] = p.farmer;
        _plots[p.farmer][p.plot] = Plot({
            cooperative: f.cooperative,
            farmerIndex: farmerIndex,
            areaCentiMu: p.areaCentiMu,
            variety: p.variety
        });
        emit PlotRegistered(p.plot, p.farmer, f.cooperative, p.areaCentiMu, p.variety, p.locationHash);
    }

    // ------------------------------------------------------------------ private: harvests

    /// @dev Record a non-empty batch of the caller's harvests, each new lot held by `holder`.
    function _recordHarvests(HarvestRecord[] calldata records, address holder) private returns (uint256 recorded) {
        if (records.length == 0) revert TeaTraceEmptyBatch();
        address cooperative = _msgSender();
        for (uint256 i; i < records.length; ++i) {
            if (_recordHarvest(cooperative, records[i], holder)) {
                unchecked {
                    ++recorded; // bounded by records.length
                }
            }
        }
    }

    /// @dev Record one harvest; false if it was already recorded (skipped, never twice). A lot
    ///      held by another than its cooperative was delivered: the events say shipped and received.
    function _recordHarvest(address cooperative, HarvestRecord memory r, address holder) private returns (bool) {
        bytes32 id = _lotId(cooperative, r.dataHash);
        HarvestCheck check = _checkHarvest(cooperative, id, r, block.timestamp);
        if (check == HarvestCheck.Duplicate) {
            emit HarvestSkipped(id, r.dataHash);
            return false;
        }
        if (check != HarvestCheck.Ok) _revertHarvest(check, cooperative, r);
        _storeNewLot(id, holder, r.grams, LotKind.FreshLeaf);
        emit HarvestRecorded(id, r.farmer, r.plot, r.grams, r.grade, r.pickedAt, r.dataHash);
        if (holder != cooperative) {
            emit LotShipped(id, cooperative, holder);
            emit LotReceived(id, holder);
        }
        return true;
    }

    /// @dev The single definition of a valid harvest, shared by recording and {checkHarvests}.
    ///      Reads two cold slots: the new lot's and the (farmer, plot) slot.
    function _checkHarvest(address cooperative, bytes32 id, HarvestRecord memory r, uint256 asOf)
        private
        view
        returns (HarvestCheck)
    {
        if (_lots[id].state != LotState.None) return HarvestCheck.Duplicate;
        if (r.grams == 0) return HarvestCheck.ZeroMass;
        if (r.grade == 0 || r.grade > MAX_GRADE) return HarvestCheck.UnknownGrade;
        if (r.pickedAt > asOf + MAX_CLOCK_SKEW) return HarvestCheck.PickedInFuture;
        Plot storage p = _plots[r.farmer][r.plot];
        address plotCooperative = p.cooperative;
        if (plotCooperative == address(0)) return HarvestCheck.UnknownPlot;
        if (plotCooperative != cooperative) return HarvestCheck.NotFarmerCooperative;
        if (!_isActive(p.farmerIndex)) return HarvestCheck.FarmerInactive;
        return HarvestCheck.Ok;
    }

    /// @dev Revert with the custom error of a failed check, carrying the offending values.
    function _revertHarvest(HarvestCheck check, address cooperative, HarvestRecord memory r) private view {
        if (check == HarvestCheck.ZeroMass) revert TeaTraceZeroMass(r.dataHash);
        if (check == HarvestCheck.UnknownGrade) revert TeaTraceUnknownGrade(r.grade);
        if (check == HarvestCheck.PickedInFuture) {
            revert TeaTraceHarvestInFuture(r.dataHash, r.pickedAt, block.timestamp);
        }
        if (check == HarvestCheck.UnknownPlot) revert TeaTraceUnknownPlot(r.farmer, r.plot);
        if (check == HarvestCheck.NotFarmerCooperative) {
            revert TeaTraceNotFarmerCooperative(r.farmer, _plots[r.farmer][r.plot].cooperative, cooperative);
        }
        revert TeaTraceFarmerInactive(r.farmer);
    }

    // ------------------------------------------------------------------ private: processing

    /// @dev Mark every input Consumed (a repeated input fails as already consumed); sum by kind.
    function _consumeInputs(bytes32[] calldata inputs, bytes32 processId)
        private
        returns (uint256 freshGrams, uint256 madeGrams)
    {
        for (uint256 i; i < inputs.length; ++i) {
            Lot storage l = _movableLot(inputs[i]);
            l.state = LotState.Consumed;
            uint256 grams = l.grams;
            if (l.kind == LotKind.FreshLeaf) freshGrams += grams;
            else madeGrams += grams;
            emit LotConsumed(inputs[i], processId, _msgSender(), grams);
        }
    }

    /// @dev Invariant 3: outputs <= fresh x maxYield / BPS + made (rounded down).
    function _checkYield(uint256 freshGrams, uint256 madeGrams, ProcessOutput[] calldata outputs) private view {
        uint256 allowed = freshGrams * _maxYieldBps / BPS + madeGrams;
        uint256 produced;
        for (uint256 i; i < outputs.length; ++i) {
            produced += outputs[i].grams;
        }
        if (produced > allowed) revert TeaTraceYieldExceeded(freshGrams, madeGrams, allowed, produced);
    }

    function _produceOutputs(ProcessOutput[] calldata outputs, bytes32 processId) private {
        address processor = _msgSender();
        for (uint256 i; i < outputs.length; ++i) {
            ProcessOutput calldata o = outputs[i];
            if (o.grams == 0) revert TeaTraceZeroMass(o.dataHash);
            bytes32 id = _lotId(processor, o.dataHash);
            if (_lots[id].state != LotState.None) revert TeaTraceLotExists(id);
            _storeNewLot(id, processor, o.grams, LotKind.MadeTea);
            emit LotProduced(id, processId, processor, o.grams, o.dataHash);
        }
    }

    // ------------------------------------------------------------------ private: lots

    function _lotId(address creator, bytes32 dataHash) private pure returns (bytes32) {
        return Hashes.efficientKeccak256(bytes32(uint256(uint160(creator))), dataHash);
    }

    /// @dev Create a Held, unrecalled lot with one SSTORE. Assigning the struct would cost an
    ///      extra SLOAD + SSTORE per packed member (~800 gas) under solc's legacy code generator.
    ///      The word follows Solidity's packing of `Lot`: holder in bits 0-159, grams 160-223,
    ///      state 224-231, kind 232-239, recalled 240-247 (tests compare it with {lot}).
    function _storeNewLot(bytes32 id, address holder, uint64 grams, LotKind kind) private {
        Lot storage l = _lots[id];
        uint256 word = uint256(uint160(holder)) | (uint256(grams) << 160) | (uint256(uint8(LotState.Held)) << 224)
            | (uint256(uint8(kind)) << 232);
        assembly ("memory-safe") {
            sstore(l.slot, word)
        }
    }

    function _existingLot(bytes32 id) private view returns (Lot storage l) {
        l = _lots[id];
        if (l.state == LotState.None) revert TeaTraceUnknownLot(id);
    }

    /// @dev A lot the caller holds and may move, sell or process (invariants 2 and 4).
    function _movableLot(bytes32 id) private view returns (Lot storage l) {
        l = _existingLot(id);
        LotState state = l.state;
        if (state == LotState.Consumed) revert TeaTraceLotAlreadyConsumed(id);
        if (state == LotState.InTransit) revert TeaTraceLotInTransit(id, l.holder);
        if (l.holder != _msgSender()) revert TeaTraceNotLotHolder(id, l.holder, _msgSender());
        if (l.recalled) revert TeaTraceLotRecalled(id);
    }

    function _ship(bytes32 id, address to) private {
        Lot storage l = _movableLot(id);
        l.holder = to;
        l.state = LotState.InTransit;
        emit LotShipped(id, _msgSender(), to);
    }

    function _receive(bytes32 id) private {
        Lot storage l = _existingLot(id);
        if (l.state != LotState.InTransit) revert TeaTraceLotNotInTransit(id, l.state);
        if (l.holder != _msgSender()) revert TeaTraceNotLotHolder(id, l.holder, _msgSender());
        l.state = LotState.Held;
        emit LotReceived(id, _msgSender());
    }

    function _sell(bytes32 id, address buyer, uint256 priceFen) private {
        if (priceFen == 0) revert TeaTraceZeroPrice(id);
        _movableLot(id).holder = buyer;
        // The first sale is the one the farmers' leaf is paid for (resales are trade between
        // buyers), so its buyer is the one SaleSettlement lets pay for the lot.
        if (_firstBuyers[id] == address(0)) _firstBuyers[id] = buyer;
        emit LotSold(id, _msgSender(), buyer, priceFen);
    }

    function _attest(QualityAttestation calldata a) private {
        _existingLot(a.lot);
        _checkGrade(a.grade);
        emit QualityAttested(a.lot, _msgSender(), a.grade, a.passed, a.certificateHash);
    }

    function _recall(bytes32 id, bytes32 reasonHash) private {
        Lot storage l = _existingLot(id);
        if (l.recalled) revert TeaTraceLotAlreadyRecalled(id);
        l.recalled = true;
        emit LotRecalled(id, _msgSender(), reasonHash);
    }

    // ------------------------------------------------------------------ private: checks

    function _isSupplyChainMember(address account) private view returns (bool) {
        return hasRole(COOPERATIVE_ROLE, account) || hasRole(PROCESSOR_ROLE, account)
            || hasRole(DISTRIBUTOR_ROLE, account);
    }

    function _checkSupplyChainMember(address account) private view {
        if (!_isSupplyChainMember(account)) revert TeaTraceNotSupplyChainMember(account);
    }

    function _checkRecipient(address to) private view {
        if (to == _msgSender() || !_isSupplyChainMember(to)) revert TeaTraceInvalidRecipient(to);
    }

    function _checkBuyer(address buyer) private view {
        if (buyer == address(0) || buyer == _msgSender()) revert TeaTraceInvalidBuyer(buyer);
    }

    function _checkGrade(uint8 grade) private pure {
        if (grade == 0 || grade > MAX_GRADE) revert TeaTraceUnknownGrade(grade);
    }
}
