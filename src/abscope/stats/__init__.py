"""Pure statistics for experiments: numpy and scipy only, no I/O."""

from abscope.stats.sufficient import MeanStats, ProportionStats

__all__ = ["MeanStats", "ProportionStats"]
