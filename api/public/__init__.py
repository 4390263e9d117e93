"""api/public"""
