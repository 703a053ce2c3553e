"""Benchmark artifacts: accuracy, size, latency and memory (see the benchmark issue)."""
