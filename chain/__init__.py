"""Chain layer: compile, nodes, accounts, deployment registry, transaction sending, reverts,
reading and decoding logs (rpc, logs, readahead, bloom, abi; events for application code).

It knows nothing of tea: any project contract compiles, deploys and runs through it.
"""
