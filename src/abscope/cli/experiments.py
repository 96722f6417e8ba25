"""``abscope experiments ...``: manage the experiments of a running server through the SDK.

Every command takes ``--url`` (or ``ABSCOPE_URL``), ``--api-key`` (or ``ABSCOPE_API_KEY``),
``--timeout`` and ``--json`` (the server's answer as it came, instead of a table). Errors
are printed as one line on stderr (see :mod:`abscope.cli.remote`): exit 1 for what the
server refused or a server that cannot be reached, 2 for a usage error.

Examples::

    abscope experiments create --id ranker-v2 --name "Ranker v2" \\
        --control-model ranker-v1 --treatment-model ranker-v2 --min-relative-lift 0.05 \\
        --declare-metric latency_ms:ratio:guardrail:lower:0.05:pause
    abscope experiments start ranker-v2
    abscope experiments add-metric ranker-v2 revenue:mean
    abscope experiments results ranker-v2
    abscope experiments gate ranker-v2   # exit 0 pass, 1 fail, 3 inconclusive
    abscope experiments export ranker-v2 --what timeseries --format csv --output hours.csv
    abscope experiments complete ranker-v2 --winner treatment
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from abscope.cli.export import (
    RESULTS_COLUMNS,
    TIMESERIES_COLUMNS,
    results_rows,
    timeseries_rows,
    to_csv,
)
from abscope.cli.metric_cuped_views import format_metric_cuped, has_metric_cuped
from abscope.cli.metric_specs import SPEC_HELP, SPEC_METAVAR, metrics_file, parse_metric_spec
from abscope.cli.metric_views import GATE_EXIT_CODES, format_gate, format_metrics, has_metrics
from abscope.cli.quantile_views import format_quantiles, has_quantiles
from abscope.cli.remote import ApiKeyOption, JsonOption, TimeoutOption, UrlOption, connect
from abscope.cli.tables import json_text
from abscope.cli.views import (
    describe_metric,
    format_experiment,
    format_list,
    format_results,
    format_transition,
    total_users,
)

__all__ = ["CREATE_FLAGS", "app", "parse_variant"]

app = typer.Typer(
    help="Manage the experiments of a running server (--url or ABSCOPE_URL).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Status = Literal["draft", "running", "paused", "completed", "stopped"]
Id = Annotated[str, typer.Argument(help="The experiment's id.", show_default=False)]
Phase = Annotated[
    int | None,
    typer.Option(min=0, help="The phase (0 is the first); the current one by default."),
]
DEFAULT_TIMEOUT = 10.0

CREATE_FLAGS: dict[str, str] = {
    "id": "--id",
    "name": "--name",
    "description": "--description",
    "control_model_id": "--control-model",
    "treatment_model_id": "--treatment-model",
    "control_weight": "--control-weight",
    "variants": "--variant",
    "traffic_percentage": "--traffic",
    "metric_type": "--metric",
    "allocation": "--allocation",
    "min_relative_lift": "--min-relative-lift",
    "power": "--power",
    "confidence_level": "--confidence-level",
    "min_sample_size": "--min-sample-size",
    "layer": "--layer",
    "sticky": "--sticky",
    "sequential": "--fixed-horizon",
    "metrics": "--declare-metric/--metrics-file",
}
"""The ``POST /experiments`` field each ``create`` option sets (a 422 names both)."""


@app.command("list")
def list_experiments(
    status: Annotated[
        Status | None, typer.Option(help="Only the experiments in it.", show_default=False)
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Every experiment: id, status, variants, traffic, start and users so far.

    The users are those of each experiment's current phase, read from its results (one
    call per experiment that has started); --json prints the list alone.
    """
    with connect(url, api_key, timeout) as client:
        experiments = client.list_experiments(status)
        if as_json:
            typer.echo(json_text({"experiments": experiments}))
            return
        users = {
            e["id"]: total_users(client.results(e["id"]))
            for e in experiments
            if e["status"] != "draft"
        }
    typer.echo(format_list(experiments, users))


@app.command()
def show(
    experiment_id: Id,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """An experiment's configuration, variants and recent audit trail."""
    with connect(url, api_key, timeout) as client:
        experiment = client.get_experiment(experiment_id)
    typer.echo(json_text(experiment) if as_json else format_experiment(experiment))


def parse_variant(spec: str) -> dict[str, Any]:
    """``NAME=MODEL`` or ``NAME=MODEL:WEIGHT`` as a variant of a ``POST /experiments`` body
    (the weight is a share, e.g. ``0.5``; without any weight the variants share equally)."""
    name, sep, model = spec.partition("=")
    if not sep or not name.strip() or not model.strip():
        raise typer.BadParameter(
            f"expected NAME=MODEL[:WEIGHT], got {spec!r}", param_hint="--variant"
        )
    variant: dict[str, Any] = {"name": name.strip(), "model_id": model.strip()}
    stem, colon, weight = model.rpartition(":")
    if colon:
        try:
            variant |= {"model_id": stem.strip(), "weight": float(weight)}
        except ValueError:
            pass  # a colon inside the model id: no weight
    return variant


def _variants(specs: list[str]) -> list[dict[str, Any]]:
    variants = [parse_variant(spec) for spec in specs]
    weighted = [v for v in variants if "weight" in v]
    if weighted and len(weighted) != len(variants):
        raise typer.BadParameter(
            "give a weight to every variant or to none", param_hint="--variant"
        )
    for v in variants:
        v.setdefault("weight", 1.0 / len(variants))
    variants[0]["is_control"] = True
    return variants


def _spec_file(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        spec = json.loads(text)
    except (OSError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="--file") from None
    if not isinstance(spec, dict):
        raise typer.BadParameter(
            "must hold a JSON object, a POST /experiments body", param_hint="--file"
        )
    return spec


@app.command()
def create(
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            metavar="FILE",
            help="A POST /experiments body as JSON ('-' reads it from stdin); then give"
            " none of the options below.",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name for people.")] = None,
    experiment_id: Annotated[
        str | None, typer.Option("--id", help="The id; made from the name if absent.")
    ] = None,
    description: Annotated[str | None, typer.Option()] = None,
    control_model: Annotated[str | None, typer.Option(help="The control's model id.")] = None,
    treatment_model: Annotated[str | None, typer.Option(help="The treatment's model id.")] = None,
    control_weight: Annotated[
        float | None, typer.Option(help="The control's share, 0.5 by default.")
    ] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME=MODEL[:WEIGHT]",
            help="Once per variant, the control first (instead of"
            " --control-model and --treatment-model).",
        ),
    ] = None,
    traffic: Annotated[
        float | None, typer.Option(help="Percentage of users in the experiment (100).")
    ] = None,
    metric: Annotated[
        Literal["binary", "continuous"] | None,
        typer.Option(help="binary (the default) or continuous.", show_default=False),
    ] = None,
    allocation: Annotated[
        Literal["fixed", "epsilon_greedy", "ucb1", "thompson"] | None,
        typer.Option(help="fixed (the default) or a bandit policy.", show_default=False),
    ] = None,
    min_relative_lift: Annotated[
        float | None,
        typer.Option(help="Smallest relative lift worth detecting (0.05 is +5%)."),
    ] = None,
    power: Annotated[float | None, typer.Option(help="Chance of detecting it (0.8).")] = None,
    confidence_level: Annotated[float | None, typer.Option(help="0.95 by default.")] = None,
    min_sample_size: Annotated[
        int | None, typer.Option(help="Users per variant before a decision (0).")
    ] = None,
    layer: Annotated[
        str | None, typer.Option(help="A layer shared with other experiments.")
    ] = None,
    sticky: Annotated[
        bool, typer.Option("--sticky", help="Keep each user's first variant.")
    ] = False,
    fixed_horizon: Annotated[
        bool,
        typer.Option("--fixed-horizon", help="Analyse once at the planned size, not sequentially."),
    ] = False,
    declare_metric: Annotated[
        list[str] | None,
        typer.Option(
            "--declare-metric",
            metavar=SPEC_METAVAR,
            help="Once per metric beside the primary (--metric is the primary's type). "
            + SPEC_HELP,
            show_default=False,
        ),
    ] = None,
    metrics_path: Annotated[
        str | None,
        typer.Option(
            "--metrics-file",
            metavar="FILE",
            help="A JSON list of metric objects, all fields (min_samples, numerator,"
            " denominator, description); '-' reads stdin. Declared before any"
            " --declare-metric.",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Create a draft experiment, from options or from --file."""
    metrics = metrics_file(metrics_path, "--metrics-file", many=True) if metrics_path else []
    metrics += [parse_metric_spec(spec, "--declare-metric") for spec in declare_metric or []]
    given: dict[str, Any] = {
        "id": experiment_id,
        "name": name,
        "description": description,
        "control_model_id": control_model,
        "treatment_model_id": treatment_model,
        "control_weight": control_weight,
        "variants": _variants(variant) if variant else None,
        "traffic_percentage": traffic,
        "metric_type": metric,
        "allocation": allocation,
        "min_relative_lift": min_relative_lift,
        "power": power,
        "confidence_level": confidence_level,
        "min_sample_size": min_sample_size,
        "layer": layer,
        "sticky": True if sticky else None,
        "sequential": False if fixed_horizon else None,
        "metrics": metrics or None,
    }
    spec = {key: value for key, value in given.items() if value is not None}
    if file is not None:
        if spec:
            flags = ", ".join(CREATE_FLAGS[key] for key in spec)
            raise typer.BadParameter(
                f"give --file or options, not both ({flags})", param_hint="--file"
            )
        spec = _spec_file(file)
    elif name is None:
        raise typer.BadParameter("is required (or give --file)", param_hint="--name")
    with connect(url, api_key, timeout, flags=None if file else CREATE_FLAGS) as client:
        experiment = client.create_experiment(spec)
    if as_json:
        typer.echo(json_text(experiment))
        return
    arms = ", ".join(
        f"{v['name']}={v['model_id']} ({v['weight']:.0%})" for v in experiment["variants"]
    )
    typer.echo(f"created {experiment['id']} ({experiment['status']}): {arms}")
    for declared in experiment.get("metrics") or []:
        typer.echo(f"  metric {describe_metric(declared)}")
    typer.echo(f"start it with: abscope experiments start {experiment['id']}")


@app.command("add-metric")
def add_metric(
    experiment_id: Id,
    spec: Annotated[
        str | None,
        typer.Argument(metavar=SPEC_METAVAR, help=SPEC_HELP, show_default=False),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            metavar="FILE",
            help="One JSON metric object, all fields ('-' reads stdin); instead of the spec.",
            show_default=False,
        ),
    ] = None,
    min_samples: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="A guardrail's users per arm before it acts (the service's default if absent).",
            show_default=False,
        ),
    ] = None,
    description: Annotated[str | None, typer.Option(show_default=False)] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Declare a secondary or guardrail metric of an experiment in draft, running or paused
    (audited as metric_added); events may name it from then on."""
    if file is not None:
        if spec is not None or min_samples is not None or description is not None:
            raise typer.BadParameter(
                "give --file or a spec (with --min-samples, --description), not both",
                param_hint="--file",
            )
        metric = metrics_file(file, "--file", many=False)[0]
    elif spec is None:
        raise typer.BadParameter(f"give {SPEC_METAVAR} or --file", param_hint="SPEC")
    else:
        metric = parse_metric_spec(spec, "SPEC")
        if min_samples is not None:
            metric["min_samples"] = min_samples
        if description is not None:
            metric["description"] = description
    flags = {"name": "SPEC", "kind": "SPEC", "role": "SPEC", "higher_is_better": "SPEC",
             "margin": "SPEC", "action": "SPEC", "min_samples": "--min-samples",
             "description": "--description"}  # fmt: skip
    with connect(url, api_key, timeout, flags=None if file else flags) as client:
        experiment = client.add_metric(experiment_id, metric)
    if as_json:
        typer.echo(json_text(experiment))
        return
    added = next(m for m in experiment["metrics"] if m["name"] == metric["name"])
    names = ", ".join(m["name"] for m in experiment["metrics"])
    typer.echo(f"added to {experiment['id']} ({experiment['status']}): {describe_metric(added)}")
    typer.echo(f"its metrics: {names}")


def _transition(
    action: str,
    experiment_id: str,
    url: str | None,
    api_key: str | None,
    timeout: float,
    as_json: bool,
    winner: str | None = None,
) -> None:
    with connect(url, api_key, timeout) as client:
        experiment = client.transition(experiment_id, action, winner)
    typer.echo(json_text(experiment) if as_json else format_transition(experiment, action))


@app.command()
def start(
    experiment_id: Id,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Start a draft: users are routed into it and counted."""
    _transition("start", experiment_id, url, api_key, timeout, as_json)


@app.command()
def pause(
    experiment_id: Id,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Pause a running experiment: everyone gets the control meanwhile."""
    _transition("pause", experiment_id, url, api_key, timeout, as_json)


@app.command()
def resume(
    experiment_id: Id,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Resume a paused experiment."""
    _transition("resume", experiment_id, url, api_key, timeout, as_json)


@app.command()
def complete(
    experiment_id: Id,
    winner: Annotated[
        str | None,
        typer.Option(help="The variant everyone gets from now on; the control if absent."),
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """End an experiment and serve its winner to everyone."""
    _transition("complete", experiment_id, url, api_key, timeout, as_json, winner)


@app.command()
def stop(
    experiment_id: Id,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """End an experiment without a winner: everyone gets the control."""
    _transition("stop", experiment_id, url, api_key, timeout, as_json)


@app.command()
def results(
    experiment_id: Id,
    phase: Phase = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """The analysis: per-variant users and rate (or mean), each treatment's lift with its
    interval, p-value and chance to beat the control, the sample-ratio check, the decision;
    with declared metrics, a table of every metric (secondaries corrected, guardrails'
    verdicts), the guardrails' status and the risk-aware decision."""
    with connect(url, api_key, timeout) as client:
        answer = client.results(experiment_id, phase)
    if as_json:
        typer.echo(json_text(answer))
        return
    text = format_results(answer)
    if has_metrics(answer):
        text += "\n\nMetrics:\n" + format_metrics(answer)
    if has_metric_cuped(answer):
        text += "\n\nCUPED on named metrics:\n" + format_metric_cuped(answer)
    if has_quantiles(answer):
        text += "\n\nLatency quantiles:\n" + format_quantiles(answer)
    typer.echo(text)


@app.command()
def gate(
    experiment_id: Id,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """The deployment gate: pass, fail or inconclusive from the guardrails, with the
    reasons. Exits 0 on pass, 1 on fail, 3 on inconclusive (and 1 on any error, 2 on a
    usage error), for a deployment script."""
    with connect(url, api_key, timeout) as client:
        answer = client.gate(experiment_id)
    typer.echo(json_text(answer) if as_json else format_gate(answer))
    raise typer.Exit(GATE_EXIT_CODES[answer["verdict"]])


@app.command()
def export(
    experiment_id: Id,
    what: Annotated[
        Literal["results", "timeseries"],
        typer.Option(help="results: a row per variant; timeseries: a row per hour and variant."),
    ] = "results",
    output_format: Annotated[
        Literal["csv", "json"], typer.Option("--format", help="CSV, or the server's JSON.")
    ] = "csv",
    output: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write to this file, not to stdout.")
    ] = None,
    phase: Phase = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """The results or the hourly time series as CSV (a header row) or as the server's JSON."""
    with connect(url, api_key, timeout) as client:
        answer = client.results(experiment_id, phase) if what == "results" else (
            client.timeseries(experiment_id, phase)
        )  # fmt: skip
    if output_format == "json":
        text, rows = json_text(answer) + "\n", None
    elif what == "results":
        rows = results_rows(answer)
        text = to_csv(RESULTS_COLUMNS, rows)
    else:
        rows = timeseries_rows(answer)
        text = to_csv(TIMESERIES_COLUMNS, rows)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    count = f" ({len(rows)} rows)" if rows is not None else ""
    typer.echo(f"wrote the {what} of {experiment_id}{count} to {output}", err=True)
