"""abscope benchmarks: run with ``make bench``."""
