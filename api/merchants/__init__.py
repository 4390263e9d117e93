"""api/merchants"""
