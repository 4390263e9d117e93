"""api/lenders"""
