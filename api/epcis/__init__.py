"""EPCIS 2.0: the trace as GS1 EPCIS JSON-LD documents and the REST binding's event query."""
