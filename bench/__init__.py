"""Benchmarks: ``python -m bench [--quick]`` prints one table of ratios against baselines
measured in the same run."""
