// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title NaiveSupplyChain
/// @notice BENCHMARK BASELINE ONLY, never deploy for real use. It reproduces the design of the
///         widely copied public "farm to consumer" supply-chain contracts: one struct per item
///         holding every party and descriptive string in storage, a string history per item,
///         one transaction per item and step, `require` strings. bench/bench_gas.py measures it
///         beside TeaTrace in the same run.
contract NaiveSupplyChain {
    enum State {
        Harvested,
        Processed,
        Packed,
        ForSale,
        Sold,
        Shipped,
        Received,
        Purchased
    }

    struct Item {
        uint256 sku;
        uint256 upc;
        address ownerID;
        address originFarmerID;
        string originFarmName;
        string originFarmInformation;
        string originFarmLatitude;
        string originFarmLongitude;
        uint256 productID;
        string productNotes;
        uint256 productPrice;
        State itemState;
        address distributorID;
        address retailerID;
        address consumerID;
    }

    uint256 public sku = 1;
    mapping(uint256 => Item) internal items;
    mapping(uint256 => string[]) public itemsHistory;

    event Harvested(uint256 upc);
    event Processed(uint256 upc);
    event Packed(uint256 upc);
    event ForSale(uint256 upc);
    event Sold(uint256 upc);
    event Shipped(uint256 upc);
    event Received(uint256 upc);
    event Purchased(uint256 upc);

    /// @notice Owner and state of an item (the originals split the getter in two for stack depth).
    function fetchItem(uint256 upc) external view returns (address owner, State state, uint256 price) {
        Item storage item = items[upc];
        return (item.ownerID, item.itemState, item.productPrice);
    }

    modifier inState(uint256 upc, State state) {
        require(items[upc].itemState == state, "Item is not in the required state");
        _;
    }

    modifier onlyOwnerOf(uint256 upc) {
        require(msg.sender == items[upc].ownerID, "Caller is not the owner of the item");
        _;
    }

    function harvestItem(
        uint256 upc,
        string calldata farmName,
        string calldata farmInformation,
        string calldata latitude,
        string calldata longitude,
        string calldata notes
    ) external {
        require(items[upc].ownerID == address(0), "Item already exists");
        Item storage item = items[upc];
        item.sku = sku;
        item.upc = upc;
        item.ownerID = msg.sender;
        item.originFarmerID = msg.sender;
        item.originFarmName = farmName;
        item.originFarmInformation = farmInformation;
        item.originFarmLatitude = latitude;
        item.originFarmLongitude = longitude;
        item.productID = sku + upc;
        item.productNotes = notes;
        item.itemState = State.Harvested;
        itemsHistory[upc].push("Harvested");
        sku = sku + 1;
        emit Harvested(upc);
    }

    function processItem(uint256 upc) external inState(upc, State.Harvested) onlyOwnerOf(upc) {
        items[upc].itemState = State.Processed;
        itemsHistory[upc].push("Processed");
        emit Processed(upc);
    }

    function packItem(uint256 upc) external inState(upc, State.Processed) onlyOwnerOf(upc) {
        items[upc].itemState = State.Packed;
        itemsHistory[upc].push("Packed");
        emit Packed(upc);
    }

    function sellItem(uint256 upc, uint256 price) external inState(upc, State.Packed) onlyOwnerOf(upc) {
        items[upc].productPrice = price;
        items[upc].itemState = State.ForSale;
        itemsHistory[upc].push("ForSale");
        emit ForSale(upc);
    }

    function buyItem(uint256 upc) external payable inState(upc, State.ForSale) {
        Item storage item = items[upc];
        require(msg.value >= item.productPrice, "Not enough paid");
        address farmer = item.originFarmerID;
        item.ownerID = msg.sender;
        item.distributorID = msg.sender;
        item.itemState = State.Sold;
        itemsHistory[upc].push("Sold");
        (bool ok,) = payable(farmer).call{value: item.productPrice}("");
        require(ok, "Payment failed");
        emit Sold(upc);
    }

    function shipItem(uint256 upc) external inState(upc, State.Sold) onlyOwnerOf(upc) {
        items[upc].itemState = State.Shipped;
        itemsHistory[upc].push("Shipped");
        emit Shipped(upc);
    }

    function receiveItem(uint256 upc) external inState(upc, State.Shipped) {
        Item storage item = items[upc];
        item.ownerID = msg.sender;
        item.retailerID = msg.sender;
        item.itemState = State.Received;
        itemsHistory[upc].push("Received");
        emit Received(upc);
    }

    function purchaseItem(uint256 upc) external inState(upc, State.Received) {
        Item storage item = items[upc];
        item.ownerID = msg.sender;
        item.consumerID = msg.sender;
        item.itemState = State.Purchased;
        itemsHistory[upc].push("Purchased");
        emit Purchased(upc);
    }
}
