"""roost's benchmarks: each `bench_<stage>.py` measures a stage next to the tool a user would
otherwise pick, in the same run, and prints the ratios. `make bench` runs them all."""
