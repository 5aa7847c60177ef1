"""Benchmarks of chronik against bare baselines; run each module as a script."""
