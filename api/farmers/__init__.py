"""api/farmers"""
