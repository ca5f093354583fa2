"""Side-by-side benchmarks: our code and the reference in one run, reported as ratios."""
