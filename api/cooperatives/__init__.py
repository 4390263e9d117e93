"""api/cooperatives"""
