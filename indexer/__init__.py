"""Indexer: follows the project contracts' events into a database and derives farmer profiles.

Raw `eth_getLogs` in adaptive ranges (chain.logs), one transaction per batch (raw events,
derived rows, checkpoint), exact reorg rollback (indexer.reorgs), rebuild from raw events, one
writer per database. See docs/indexer.md.
"""
