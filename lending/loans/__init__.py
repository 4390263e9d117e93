"""lending/loans"""
