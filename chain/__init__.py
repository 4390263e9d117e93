"""Chain layer: compile, nodes, accounts, deployment registry, transaction sending, reverts.

It knows nothing of tea: any project contract compiles, deploys and runs through it.
"""
