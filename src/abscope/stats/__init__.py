"""Pure statistics for experiments: numpy and scipy only, no I/O.

The most used names are re-exported here; each submodule holds one concept (see the
README's table).
"""

from abscope.stats.analysis import (
    AnalysisOptions,
    Comparison,
    Decision,
    ExperimentAnalysis,
    VariantSummary,
    analyze_experiment,
)
from abscope.stats.planner import DurationPlan, plan_duration, power_grid, sensitivity_curve
from abscope.stats.sufficient import MeanStats, ProportionStats

__all__ = [
    "AnalysisOptions",
    "Comparison",
    "Decision",
    "DurationPlan",
    "ExperimentAnalysis",
    "MeanStats",
    "ProportionStats",
    "VariantSummary",
    "analyze_experiment",
    "plan_duration",
    "power_grid",
    "sensitivity_curve",
]
