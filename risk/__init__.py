"""The risk monitor: money followed wallet to wallet, named rules over the indexed chain, alerts."""
