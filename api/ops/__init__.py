"""api/ops"""
