"""Seeded, reproducible tea-season generator: farmers, plots, harvests, processing, sales."""
