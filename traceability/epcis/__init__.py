"""EPCIS 2.0 export of the indexed trace events: identifiers, documents, validation, queries.

`ids` is the one place identifiers are minted and parsed, `export` builds EPCISDocuments from
the indexer's tables, `validate` checks them against the official GS1 JSON schema (vendored in
`schema/`), `query` answers the EPCIS common query parameters.
"""
