"""Code the benchmarks in bench/ share (not benchmarks themselves)."""
