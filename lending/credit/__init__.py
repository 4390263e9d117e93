"""lending/credit"""
