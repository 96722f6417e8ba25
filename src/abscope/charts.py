"""Results -> plotly figures: pure functions, no I/O.

Each function takes the plain values the service and the pure packages return (the dicts of
:meth:`~abscope.service.analysis.Analysis.results` and
:meth:`~abscope.service.analysis.Analysis.timeseries`, a
:class:`~abscope.stats.planner.SensitivityCurve`, a :class:`~abscope.stats.planner.PowerGrid`,
:class:`~abscope.bandits.simulator.SimulationResult` objects) and returns a
:class:`plotly.graph_objects.Figure`. :func:`figure_json` turns a figure into a JSON-ready dict
for ``Plotly.newPlot(element, figure.data, figure.layout)`` in the page.

===========================  ===============================================================
function                     traces (``name``)
===========================  ===============================================================
:func:`conversion_over_time` ``"<variant> CI"`` bands (binary only), then one line per variant
:func:`lift_over_time`       per treatment: ``"<variant> CI"`` band, ``"<variant>"`` line and
                             ``"<variant> (sequence)"`` dashed confidence sequence
:func:`samples_over_time`    one line per variant
:func:`posteriors`           one density curve per variant
:func:`sensitivity_chart`    ``"Days needed"`` and ``"Planned lift"`` (or ``"Planned effect"``)
:func:`power_heatmap`        ``"Power"`` heatmap, ``"Target power"`` contour, ``"Plan"``
:func:`regret_chart`         one line per policy, with the final ±SE as an error bar
===========================  ===============================================================

Every trace of a variant carries ``legendgroup=<variant>`` and the variant's colour: the
control grey-blue and each treatment its own colour, the same in every chart. Bands are left
out of the legend, so it shows one entry per variant. A figure without data carries the
annotation ``"No data yet"`` (and its empty traces) instead of raising.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]
from scipy import stats as distributions

from abscope.bandits.policies import FixedSplitConfig
from abscope.bandits.simulator import SimulationResult
from abscope.stats.planner import PowerGrid, SensitivityCurve

__all__ = [
    "CONTROL_COLOR",
    "BURN_IN_SHARE",
    "NO_DATA",
    "NO_LIFT",
    "TREATMENT_COLORS",
    "conversion_over_time",
    "figure_json",
    "lift_over_time",
    "posteriors",
    "power_heatmap",
    "regret_chart",
    "samples_over_time",
    "sensitivity_chart",
    "variant_colors",
]

CONTROL_COLOR = "#6b7d99"
"""The control's colour (grey-blue), and the fixed split's in the regret chart."""
TREATMENT_COLORS = (
    "#e4572e",
    "#17a398",
    "#8e5bd0",
    "#f2a541",
    "#2f6fde",
    "#c2185b",
    "#5b8e2d",
    "#a0522d",
    "#0b8fa8",
)
"""Treatment colours, in the order of the experiment's variants (repeating past nine)."""
NO_DATA = "No data yet"
NO_LIFT = "No lift yet:<br>the control has no conversions"
"""On two lines, so that it fits a chart at phone width."""
BURN_IN_SHARE = 0.1
"""Without a minimum sample size, the lift chart's y-axis follows the points at which every
arm has at least this share of its final users (the first hours' intervals are too wide)."""

_BAND_OPACITY = 0.18
_DENSITY_POINTS = 200
_TAIL = 1e-4
_MAX_REGRET_POINTS = 500
_MARKERS_UP_TO = 24  # points; longer series are drawn as plain lines
_RATE_TICKS = "~%"
_COUNT_TICKS = ",~r"
_WHEN_TICKS = "%-d %b %Y<br>%H:%M UTC"
"""Hour ticks in the pages' one date format ("1 Dec 2026 14:03 UTC"), on two lines."""
_WHEN_HOVER = "%-d %b %Y %H:%M UTC"
"""The hovered hour, in the same format on one line."""
_HOUR_MS = 3_600_000
_FEW_HOURS = 6
"""Up to this many hours apart, ticks are one hour apart (plotly would pick 30 minutes)."""
_SMALL_COUNTS = 20
"""Below this many users plotly's own steps can be fractions (0.2 users): pick whole ones."""
_TYPED_ARRAYS = {
    "i1": np.int8,
    "u1": np.uint8,
    "i2": np.int16,
    "u2": np.uint16,
    "i4": np.int32,
    "u4": np.uint32,
    "f4": np.float32,
    "f8": np.float64,
}


# --- colours and layout ------------------------------------------------------------------


def variant_colors(names: Sequence[str], control: str | None = None) -> dict[str, str]:
    """One colour per variant: the control (by default the first) grey-blue, then treatments.

    Examples
    --------
    >>> variant_colors(["a", "b", "c"], control="b")
    {'a': '#e4572e', 'b': '#6b7d99', 'c': '#17a398'}
    """
    chosen = control if control in names else (names[0] if names else None)
    colors: dict[str, str] = {}
    treatments = 0
    for name in names:
        if name == chosen:
            colors[name] = CONTROL_COLOR
        else:
            colors[name] = TREATMENT_COLORS[treatments % len(TREATMENT_COLORS)]
            treatments += 1
    return colors


def _rgba(color: str, alpha: float) -> str:
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _figure(
    x_title: str,
    y_title: str,
    *,
    x_format: str | None = None,
    y_format: str | None = None,
    hovermode: str = "x unified",
) -> go.Figure:
    """An empty figure with the shared look: white template, bottom legend, small margins."""
    figure = go.Figure()
    figure.update_layout(
        template="plotly_white",
        autosize=True,
        margin={"l": 8, "r": 20, "t": 8, "b": 8},
        font={"size": 12},
        separators=".,",
        hovermode=hovermode,
        legend={
            "orientation": "h",
            "traceorder": "normal",
            "yref": "container",
            "y": 0,
            "yanchor": "bottom",
            "xref": "container",
            "x": 0,
            "xanchor": "left",
        },
    )
    figure.update_xaxes(title_text=x_title, automargin=True, tickformat=x_format)
    figure.update_yaxes(title_text=y_title, automargin=True, tickformat=y_format)
    return figure


def _no_data(figure: go.Figure, text: str = NO_DATA) -> go.Figure:
    figure.add_annotation(
        text=text,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 14, "color": "#888888"},
    )
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    return figure


def _hours(hours: Sequence[str]) -> list[str]:
    """ISO hours as UTC ``YYYY-MM-DD HH:MM``: plotly.js drops a time zone, so give it none."""
    out = []
    for hour in hours:
        moment = datetime.fromisoformat(hour)
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        out.append(moment.strftime("%Y-%m-%d %H:%M"))
    return out


def _time_axis(figure: go.Figure, hours: Sequence[str]) -> go.Figure:
    """Hour ticks and hover in the pages' date format, and an axis two hours wide around a
    lone hour (not milliseconds)."""
    figure.update_xaxes(tickformat=_WHEN_TICKS, hoverformat=_WHEN_HOVER, nticks=6)
    if hours:
        first = datetime.strptime(hours[0], "%Y-%m-%d %H:%M")
        last = datetime.strptime(hours[-1], "%Y-%m-%d %H:%M")
        if last - first <= timedelta(hours=_FEW_HOURS):
            figure.update_xaxes(tick0=hours[0], dtick=_HOUR_MS)
    if len(hours) == 1:
        moment = datetime.strptime(hours[0], "%Y-%m-%d %H:%M")
        pad = timedelta(hours=1)
        figure.update_xaxes(range=[str(moment - pad), str(moment + pad)])
    return figure


def _count_step(top: float) -> int | None:
    """A whole tick step for a users axis up to ``top``, or ``None`` to let plotly choose
    (from :data:`_SMALL_COUNTS` users on its steps are whole numbers anyway).

    Examples
    --------
    >>> [_count_step(top) for top in (0, 3, 9, 19, 20)]
    [1, 1, 2, 5, None]
    """
    if top >= _SMALL_COUNTS:
        return None
    return 1 if top <= 6 else 2 if top <= 12 else 5


def _hourly_line(
    hours: Sequence[str], values: Sequence[Any], name: str, color: str, value_format: str
) -> go.Scatter:
    """One variant's series by hour: the line every time chart draws per variant."""
    return go.Scatter(
        x=hours,
        y=list(values),
        name=name,
        legendgroup=name,
        mode=_mode(len(hours)),
        line={"color": color, "width": 2},
        hovertemplate=f"{value_format}<extra>{name}</extra>",
    )


def _mode(points: int) -> str:
    return "lines+markers" if points <= _MARKERS_UP_TO else "lines"


def _band(
    x: Sequence[Any],
    lower: Sequence[float | None],
    upper: Sequence[float | None],
    *,
    name: str,
    color: str,
) -> go.Scatter | None:
    """A filled polygon between ``lower`` and ``upper`` where both are known; else ``None``."""
    points = [
        (at, low, high)
        for at, low, high in zip(x, lower, upper, strict=False)
        if _finite(low) and _finite(high)
    ]
    if not points:
        return None
    xs = [p[0] for p in points]
    return go.Scatter(
        x=xs + xs[::-1],
        y=[p[2] for p in points] + [p[1] for p in points][::-1],
        name=f"{name} CI",
        legendgroup=name,
        showlegend=False,
        mode="lines",
        line={"width": 0, "color": color},
        fill="toself",
        fillcolor=_rgba(color, _BAND_OPACITY),
        hoverinfo="skip",
    )


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _control_of(timeseries: Mapping[str, Any], control: str | None) -> str | None:
    """The given control, else the one variant without a lift series, else the first."""
    names = [str(name) for name in timeseries.get("variants") or {}]
    if control is not None:
        return control
    lifts = timeseries.get("lift") or {}
    rest = [name for name in names if name not in lifts]
    if lifts and len(rest) == 1:
        return rest[0]
    return names[0] if names else None


# --- experiment charts -------------------------------------------------------------------


def conversion_over_time(
    timeseries: Mapping[str, Any], metric_type: str, *, control: str | None = None
) -> go.Figure:
    """Cumulative conversion rate (or mean) of each variant by hour, with its interval.

    Parameters
    ----------
    timeseries : mapping
        :meth:`Analysis.timeseries` output: ``hours`` and, per variant, ``value``
        with ``ci_lower``/``ci_upper`` (empty for a continuous metric, which gets no band).
    metric_type : {"binary", "continuous"}
        A binary metric is a rate, drawn in percent.
    control : str, optional
        The control's name, for its colour; inferred from the lift series by default.
    """
    binary = metric_type == "binary"
    figure = _figure(
        "Hour (UTC)",
        "Conversion rate" if binary else "Mean value",
        y_format=_RATE_TICKS if binary else _COUNT_TICKS,
    )
    hours = _hours(timeseries.get("hours") or [])
    series: Mapping[str, Any] = timeseries.get("variants") or {}
    colors = variant_colors(list(series), _control_of(timeseries, control))
    value_format = "%{y:.2%}" if binary else "%{y:,.4~r}"
    for name, data in series.items():
        band = _band(hours, data["ci_lower"], data["ci_upper"], name=name, color=colors[name])
        if band is not None:
            figure.add_trace(band)
    for name, data in series.items():
        figure.add_trace(_hourly_line(hours, data["value"], name, colors[name], value_format))
    return _time_axis(figure, hours) if hours else _no_data(figure)


def lift_over_time(
    timeseries: Mapping[str, Any],
    *,
    control: str | None = None,
    min_sample_size: int | None = None,
) -> go.Figure:
    """Relative lift of each treatment over the control by hour.

    The band is the fixed-horizon confidence interval; the dashed lines are the always-valid
    confidence sequence, the interval that may be watched every hour. A dotted line marks zero.

    The y-axis follows the data after the burn-in: its range spans zero and every lift,
    interval and sequence value at the hours when each arm of that comparison has at least
    ``min_sample_size`` users (or, when that is 0, :data:`BURN_IN_SHARE` of its final
    users), with a 5% margin. The first hours' intervals, which can be hundreds of percent
    wide, are drawn but run off the axis instead of flattening the line. A figure whose
    treatments have no defined lift at all says so (:data:`NO_LIFT`).

    Parameters
    ----------
    timeseries : mapping
        :meth:`Analysis.timeseries` output; ``lift`` maps each treatment to its
        ``lift``, ``ci_lower``, ``ci_upper``, ``cs_lower`` and ``cs_upper`` lists (relative
        lifts, 0.05 is +5%; ``None`` where undefined), and ``min_sample_size``. A
        continuous metric has no lift series.
    control : str, optional
        The control's name, for the colours; inferred by default.
    min_sample_size : int, optional
        The burn-in per arm; ``timeseries["min_sample_size"]`` by default.
    """
    figure = _figure("Hour (UTC)", "Lift vs control", y_format=_RATE_TICKS)
    figure.add_hline(y=0, line={"color": "#888888", "width": 1, "dash": "dot"})
    hours = _hours(timeseries.get("hours") or [])
    lifts: Mapping[str, Any] = timeseries.get("lift") or {}
    colors = variant_colors(
        list(timeseries.get("variants") or lifts), _control_of(timeseries, control)
    )
    for name, data in lifts.items():
        color = colors.get(name, TREATMENT_COLORS[0])
        band = _band(hours, data["ci_lower"], data["ci_upper"], name=name, color=color)
        if band is not None:
            figure.add_trace(band)
        figure.add_trace(_hourly_line(hours, data["lift"], name, color, "%{y:+.2%}"))
        sequence_x = [*hours, None, *hours] if data["cs_lower"] else []
        figure.add_trace(
            go.Scatter(
                x=sequence_x,
                y=[*data["cs_lower"], None, *data["cs_upper"]] if sequence_x else [],
                name=f"{name} (sequence)",
                legendgroup=name,
                mode="lines",
                line={"color": color, "width": 1.5, "dash": "dash"},
                hoverinfo="skip",
            )
        )
    if not hours or not lifts:
        return _no_data(figure)
    if not any(_finite(v) for data in lifts.values() for v in data["lift"]):
        return _no_data(figure, NO_LIFT)
    floor = timeseries.get("min_sample_size", 0) if min_sample_size is None else min_sample_size
    y_range = _lift_range(timeseries, lifts, _control_of(timeseries, control), int(floor or 0))
    if y_range is not None:
        figure.update_yaxes(range=y_range)
    return _time_axis(figure, hours)


def metric_effect_over_time(series: Mapping[str, Any], *, control: str | None = None) -> go.Figure:
    """One declared metric's relative effect of each treatment by hour, with its interval.

    ``series`` is one entry of :func:`abscope.metric_series.metric_series`: a guardrail's
    band is its always-valid two-sided interval and a dashed red line marks its margin (the
    effect it must not be shown beyond); a secondary's band is the interval of the
    experiment's inference mode. The title names the metric, its role and that mode.
    """
    role = series.get("role", "secondary")
    inference = "always-valid" if series.get("inference") == "sequential" else "fixed-horizon"
    figure = _figure(
        "Hour (UTC)", f"{series.get('metric', 'metric')}: change vs control", y_format=_RATE_TICKS
    )
    figure.update_layout(
        title={
            "text": f"{series.get('metric')} ({role}, {inference} interval)",
            "font": {"size": 13},
        },
        margin={"l": 8, "r": 20, "t": 36, "b": 8},
    )
    figure.add_hline(y=0, line={"color": "#888888", "width": 1, "dash": "dot"})
    threshold = series.get("threshold")
    if _finite(threshold):
        figure.add_hline(
            y=threshold,
            line={"color": "#c53030", "width": 1.5, "dash": "dash"},
            annotation_text="margin",
            annotation_position="top left",
        )
    hours = _hours(series.get("hours") or [])
    effects: Mapping[str, Any] = series.get("effects") or {}
    colors = variant_colors(list(effects), control)
    for index, (name, data) in enumerate(effects.items()):
        color = colors.get(name, TREATMENT_COLORS[index % len(TREATMENT_COLORS)])
        band = _band(hours, data["lower"], data["upper"], name=name, color=color)
        if band is not None:
            figure.add_trace(band)
        line = _hourly_line(hours, data["estimate"], name, color, "%{y:+.2%}")
        if len(hours) <= _MARKERS_UP_TO:  # markers are drawn: each carries its interval
            line.update(error_y=_error_bars(data["estimate"], data["lower"], data["upper"], color))
        figure.add_trace(line)
    if not hours or not any(_finite(v) for d in effects.values() for v in d["estimate"]):
        return _no_data(figure)
    return _time_axis(figure, hours)


def _error_bars(
    estimate: Sequence[float | None],
    lower: Sequence[float | None],
    upper: Sequence[float | None],
    color: str,
) -> dict[str, Any]:
    """Asymmetric error bars from an interval (none where it is undefined)."""

    def gap(a: float | None, b: float | None) -> float | None:
        return a - b if a is not None and b is not None and _finite(a) and _finite(b) else None

    above = [gap(hi, mid) for mid, hi in zip(estimate, upper, strict=True)]
    below = [gap(mid, lo) for mid, lo in zip(estimate, lower, strict=True)]
    return {
        "type": "data",
        "symmetric": False,
        "array": above,
        "arrayminus": below,
        "color": color,
        "thickness": 1.5,
        "width": 4,
    }


def _lift_range(
    timeseries: Mapping[str, Any],
    lifts: Mapping[str, Any],
    control: str | None,
    min_sample_size: int,
) -> list[float] | None:
    """The y-range of the values after the burn-in (see :func:`lift_over_time`), or ``None``
    to let plotly choose when the arms' users are not given."""
    series: Mapping[str, Any] = timeseries.get("variants") or {}
    if control is None or control not in series:
        return None
    values: list[float] = [0.0]
    for name, data in lifts.items():
        if name not in series:
            return None
        arms = [series[control]["samples"], series[name]["samples"]]
        if not all(arms):
            continue
        floors = [min_sample_size or BURN_IN_SHARE * arm[-1] for arm in arms]
        after = [
            i
            for i in range(len(data["lift"]))
            if all(arm[i] >= floor and arm[i] > 0 for arm, floor in zip(arms, floors, strict=True))
        ]
        # Before the minimum sample is reached, the latest hour is the best there is.
        for i in after or [len(data["lift"]) - 1]:
            for key in ("lift", "ci_lower", "ci_upper", "cs_lower", "cs_upper"):
                if i < len(data[key]) and _finite(data[key][i]):
                    values.append(float(data[key][i]))
    low, high = min(values), max(values)
    pad = 0.05 * (high - low) or 0.01
    return [low - pad, high + pad]


def samples_over_time(timeseries: Mapping[str, Any], *, control: str | None = None) -> go.Figure:
    """Cumulative users of each variant by hour: a bandit's shift of traffic shows here.

    Parameters
    ----------
    timeseries : mapping
        :meth:`Analysis.timeseries` output; ``samples`` per variant.
    control : str, optional
        The control's name, for its colour; inferred by default.
    """
    figure = _figure("Hour (UTC)", "Users (cumulative)", y_format=_COUNT_TICKS)
    figure.update_yaxes(rangemode="tozero")
    hours = _hours(timeseries.get("hours") or [])
    series: Mapping[str, Any] = timeseries.get("variants") or {}
    colors = variant_colors(list(series), _control_of(timeseries, control))
    top = 0.0
    for name, data in series.items():
        figure.add_trace(_hourly_line(hours, data["samples"], name, colors[name], "%{y:,} users"))
        top = max([top, *(float(n) for n in data["samples"] if _finite(n))])
    step = _count_step(top)
    if step is not None:  # whole users only: no 0.2-user ticks
        figure.update_yaxes(tick0=0, dtick=step, range=[0, max(top, 1) * 1.05])
    return _time_axis(figure, hours) if hours else _no_data(figure)


def _posterior(variant: Mapping[str, Any], binary: bool) -> Any | None:
    """The frozen scipy distribution of a variant's rate or mean, or ``None`` without data."""
    n = int(variant.get("n") or 0)
    if binary:
        if n <= 0:
            return None
        conversions = int(variant.get("conversions") or 0)
        return distributions.beta(1 + conversions, 1 + n - conversions)
    mean, std = variant.get("mean"), variant.get("std")
    if n < 2 or not isinstance(mean, int | float) or not isinstance(std, int | float):
        return None
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        return None
    return distributions.norm(float(mean), float(std) / math.sqrt(n))


def posteriors(results: Mapping[str, Any]) -> go.Figure:
    """Posterior density of each variant's conversion rate (or mean).

    Parameters
    ----------
    results : mapping
        :meth:`Analysis.results` output: ``metric_type`` and ``variants`` (``name``,
        ``is_control``, ``n``, ``conversions``, ``mean``, ``std``).

    Notes
    -----
    A binary metric draws Beta(1 + conversions, 1 + n − conversions), the posterior under a
    uniform prior; a continuous one the normal approximation N(mean, std²/n). The x range
    spans the 1e-4 and 1 − 1e-4 quantiles of every variant with data; a variant without data
    (no users, or for a mean fewer than two or no spread) keeps an empty curve.
    """
    binary = results.get("metric_type", "binary") == "binary"
    figure = _figure(
        "Conversion rate" if binary else "Mean value",
        "Posterior density",
        x_format=_RATE_TICKS if binary else _COUNT_TICKS,
        hovermode="closest",
    )
    variants: Sequence[Mapping[str, Any]] = results.get("variants") or []
    names = [str(v["name"]) for v in variants]
    control = next((str(v["name"]) for v in variants if v.get("is_control")), None)
    colors = variant_colors(names, control)
    posts = [_posterior(v, binary) for v in variants]
    known = [p for p in posts if p is not None]
    grid: list[float] = []
    if known:
        low = min(float(p.ppf(_TAIL)) for p in known)
        high = max(float(p.isf(_TAIL)) for p in known)
        if binary:
            low, high = max(low, 0.0), min(high, 1.0)
        grid = np.linspace(low, high, _DENSITY_POINTS).tolist()
    for name, post in zip(names, posts, strict=True):
        density = post.pdf(grid).tolist() if post is not None and grid else []
        figure.add_trace(
            go.Scatter(
                x=grid if density else [],
                y=density,
                name=name,
                legendgroup=name,
                mode="lines",
                line={"color": colors[name], "width": 2},
                fill="tozeroy",
                fillcolor=_rgba(colors[name], _BAND_OPACITY),
                hovertemplate=("%{x:.2%}" if binary else "%{x:,.4~r}") + f"<extra>{name}</extra>",
            )
        )
    figure.update_yaxes(showticklabels=False, rangemode="tozero")
    return figure if known else _no_data(figure)


# --- planner charts ----------------------------------------------------------------------


def _effect_axis(metric_type: str, effect_scale: str) -> tuple[str, str, str]:
    """(axis title, tick format, hover format) for a planner's effect axis."""
    # Short enough for a phone-width chart.
    if effect_scale == "relative":
        return "Minimum detectable lift (relative)", _RATE_TICKS, ".1%"
    if metric_type == "binary":
        return "Minimum difference (% points)", _RATE_TICKS, ".2%"
    return "Minimum difference (absolute)", ",~g", ",.4~g"


def sensitivity_chart(curve: SensitivityCurve) -> go.Figure:
    """Days needed against the smallest effect to detect, with the planned effect marked.

    Parameters
    ----------
    curve : SensitivityCurve
        From :func:`abscope.stats.planner.sensitivity_curve`; ``effects`` (x, on the plan's
        scale: relative lifts and differences of rates drawn in percent) and ``days`` (y),
        with ``total_samples`` in the hover. A CUPED plan's curve is named for its ``ρ``,
        with ``unadjusted_days`` beside it as a dashed "Without CUPED" line.
    """
    title, ticks, shown = _effect_axis(curve.metric_type, curve.effect_scale)
    figure = _figure(
        title,
        "Days needed",
        x_format=ticks,
        y_format=_COUNT_TICKS,
        hovermode="closest",
    )
    figure.update_yaxes(rangemode="tozero")
    effects, days = list(curve.effects), list(curve.days)
    cuped = curve.unadjusted_days is not None
    if curve.unadjusted_days is not None:
        figure.add_trace(
            go.Scatter(
                x=effects,
                y=list(curve.unadjusted_days),
                name="Without CUPED",
                mode=_mode(len(effects)),
                line={"color": "#888888", "width": 1.5, "dash": "dash"},
                hovertemplate=f"effect %{{x:{shown}}}: %{{y:,}} days without CUPED<extra></extra>",
            )
        )
    figure.add_trace(
        go.Scatter(
            x=effects,
            y=days,
            customdata=list(curve.total_samples),
            name=f"Days needed with CUPED (ρ = {curve.covariate_correlation:g})"
            if cuped
            else "Days needed",
            mode=_mode(len(effects)),
            line={"color": TREATMENT_COLORS[4], "width": 2},
            hovertemplate=f"effect %{{x:{shown}}}: %{{y:,}} days, %{{customdata:,}} users"
            "<extra></extra>",
        )
    )
    planned = curve.min_effect
    if planned in curve.effects:
        index = curve.effects.index(planned)
        figure.add_trace(
            go.Scatter(
                x=[planned],
                y=[curve.days[index]],
                customdata=[curve.total_samples[index]],
                name="Planned lift" if curve.effect_scale == "relative" else "Planned effect",
                mode="markers",
                marker={"color": TREATMENT_COLORS[0], "size": 11, "symbol": "diamond"},
                hovertemplate=f"planned effect %{{x:{shown}}}: %{{y:,}} days, "
                "%{customdata:,} users<extra></extra>",
            )
        )
    if effects:
        figure.add_vline(x=planned, line={"color": "#888888", "width": 1, "dash": "dot"})
    return figure if effects else _no_data(figure)


def power_heatmap(grid: PowerGrid, *, planned_samples: int | None = None) -> go.Figure:
    """Power over users per arm (x) and effect (y), with the target power's contour.

    Parameters
    ----------
    grid : PowerGrid
        From :func:`abscope.stats.planner.power_grid`; ``power[i][j]`` is the heatmap's
        ``z`` at ``effects[i]`` (on the plan's scale) and ``sample_sizes[j]``.
    planned_samples : int, optional
        The plan's control users, marked with its lift as ``"Plan"``.
    """
    title, ticks, shown = _effect_axis(grid.metric_type, grid.effect_scale)
    figure = _figure(
        "Users per arm (control)",
        title.replace("Minimum detectable ", "").replace("Minimum ", "").capitalize(),
        x_format=_COUNT_TICKS,
        y_format=ticks,
        hovermode="closest",
    )
    x, y = list(grid.sample_sizes), list(grid.effects)
    z = [list(row) for row in grid.power]
    if not (x and y):
        return _no_data(figure)
    figure.add_trace(
        go.Heatmap(
            x=x,
            y=y,
            z=z,
            zmin=0.0,
            zmax=1.0,
            name="Power"
            if not grid.covariate_correlation  # None, or 0: no CUPED
            else f"Power with CUPED (ρ = {grid.covariate_correlation:g})",
            colorscale="Blues",
            colorbar={"title": {"text": "Power"}, "tickformat": ".0%", "thickness": 10},
            hovertemplate=f"%{{x:,}} users per arm, effect %{{y:{shown}}}: power %{{z:.1%}}"
            "<extra></extra>",
        )
    )
    target = grid.target_power
    figure.add_trace(
        go.Contour(
            x=x,
            y=y,
            z=z,
            name=f"Target power {target:.0%}",
            showscale=False,
            showlegend=True,
            autocontour=False,
            contours={
                "start": target,
                "end": target,
                "size": 1.0,
                "coloring": "none",
            },
            line={"color": "#f2a541", "width": 2, "dash": "dash"},
            hoverinfo="skip",
        )
    )
    if planned_samples is not None:
        figure.add_trace(
            go.Scatter(
                x=[planned_samples],
                y=[grid.min_effect],
                name="Plan",
                mode="markers",
                marker={
                    "color": TREATMENT_COLORS[0],
                    "size": 11,
                    "symbol": "diamond",
                    "line": {"color": "white", "width": 1},
                },
                hovertemplate=f"plan: %{{x:,}} users per arm, effect %{{y:{shown}}}<extra></extra>",
            )
        )
    return figure


# --- bandit simulation -------------------------------------------------------------------


def _steps(horizon: int, most: int) -> list[int]:
    """At most ``most`` step indices (0-based) spread over the horizon, first and last kept."""
    if horizon <= most:
        return list(range(horizon))
    return [int(i) for i in np.unique(np.linspace(0, horizon - 1, most).round().astype(int))]


def regret_chart(
    results: Mapping[str, SimulationResult], *, max_points: int = _MAX_REGRET_POINTS
) -> go.Figure:
    """Mean cumulative regret of each policy over the requests of a simulation.

    Parameters
    ----------
    results : mapping of str to SimulationResult
        The trace name of each policy and its :func:`abscope.bandits.simulate` result.
    max_points : int, default 500
        Long horizons are drawn at this many steps (the first and last among them); ``x``
        holds the 1-based request numbers and ``y`` the regret after them.

    Notes
    -----
    The simulator keeps the standard error of the final regret only, so the last point of
    each line carries a ±SE error bar. A fixed split is drawn in the control's grey-blue.
    """
    figure = _figure("Requests", "Cumulative regret", y_format=_COUNT_TICKS)
    figure.update_xaxes(tickformat=_COUNT_TICKS)
    figure.update_yaxes(rangemode="tozero")
    adaptive = 0
    for name, result in results.items():
        if isinstance(result.policy, FixedSplitConfig):
            color = CONTROL_COLOR
        else:
            color = TREATMENT_COLORS[adaptive % len(TREATMENT_COLORS)]
            adaptive += 1
        steps = _steps(result.horizon, max_points)
        regret = result.mean_cumulative_regret
        errors: list[float | None] = [None] * len(steps)
        if errors and math.isfinite(result.final_regret_se):
            errors[-1] = result.final_regret_se
        figure.add_trace(
            go.Scatter(
                x=[step + 1 for step in steps],
                y=[float(regret[step]) for step in steps],
                name=name,
                legendgroup=name,
                mode="lines",
                line={"color": color, "width": 2},
                error_y={
                    "type": "data",
                    "array": errors,
                    "color": color,
                    "thickness": 1.5,
                    "width": 5,
                },
                hovertemplate=f"%{{y:,.1f}}<extra>{name}</extra>",
            )
        )
    return figure if results else _no_data(figure)


# --- JSON --------------------------------------------------------------------------------


def figure_json(figure: go.Figure) -> dict[str, Any]:
    """The figure as a JSON-ready dict: plain lists, and ``None`` for NaN and infinities.

    plotly encodes numpy arrays as base64 typed arrays; they are decoded back to lists here,
    so the result passes ``json.dumps(..., allow_nan=False)`` and reads as plain numbers.

    Examples
    --------
    >>> import json
    >>> figure = go.Figure(go.Scatter(x=np.arange(3), y=[1.0, float("nan"), math.inf]))
    >>> data = figure_json(figure)["data"][0]
    >>> data["x"], data["y"]
    ([0, 1, 2], [1.0, None, None])
    >>> json.dumps(figure_json(figure), allow_nan=False).startswith('{"data"')
    True
    """
    plain: dict[str, Any] = _plain(figure.to_plotly_json())
    return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if isinstance(value.get("bdata"), str) and value.get("dtype") in _TYPED_ARRAYS:
            return _plain(_decode(value))
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _decode(spec: Mapping[str, Any]) -> Any:
    array = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=_TYPED_ARRAYS[spec["dtype"]])
    shape = spec.get("shape")
    if isinstance(shape, str) and shape:
        array = array.reshape(tuple(int(part) for part in shape.split(",") if part.strip()))
    return array.tolist()
