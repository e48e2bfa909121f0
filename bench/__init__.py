"""Benchmarks: extraction quality and speed (``python -m bench.extraction``)."""
