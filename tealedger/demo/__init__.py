"""tealedger/demo"""
