"""Benchmark harness: generated national-scale inputs, read floor, tremplin, pandas."""
