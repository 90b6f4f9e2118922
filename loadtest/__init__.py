"""Load and latency benchmarks (benchmarks, not tests: they print numbers, they do not assert)."""
