"""api/supply_chain"""
