"""abscope: an experimentation service for comparing ML model versions in production.

The pure core lives in :mod:`abscope.stats` (tests, power, planning, Bayesian and sequential
inference) and :mod:`abscope.bandits` (adaptive allocation policies and a simulator).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
