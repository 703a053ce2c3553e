"""Benchmark artifacts: accuracy, size, latency and memory, reports, and the regression gates."""
