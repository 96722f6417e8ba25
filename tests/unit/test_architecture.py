"""The pure core (stats, bandits, assignment) imports no I/O: an allow-list of modules.

STYLE.md: dependencies point one way, and `stats`, `assignment` and `bandits` import neither
redis, fastapi nor httpx. An allow-list is stricter than a deny-list: a new import has to be
added here on purpose.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import abscope

SRC = Path(abscope.__file__).parent
PURE_PACKAGES = ("stats", "bandits", "assignment")
PURE_MODULES = ("_checks",)  # stdlib-only checks shared by stats and assignment
ALLOWED_ROOTS = {
    "__future__",
    "abscope",
    "bisect",
    "collections",
    "dataclasses",
    "enum",
    "fractions",
    "functools",
    "hashlib",
    "itertools",
    "math",
    "numpy",
    "operator",
    "scipy",
    "statistics",
    "struct",
    "typing",
}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval"}


def _pure_modules() -> list[Path]:
    return sorted(
        [
            path
            for package in PURE_PACKAGES
            if (SRC / package).is_dir()
            for path in (SRC / package).rglob("*.py")
        ]
        + [SRC / f"{module}.py" for module in PURE_MODULES]
    )


def _imports(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_there_are_pure_modules_to_check() -> None:
    assert len(_pure_modules()) >= 10


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_pure_module_imports_only_allowed_modules(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for name in _imports(tree):
        root = name.split(".")[0]
        assert root in ALLOWED_ROOTS, f"{path.name} imports {name}"
        if root == "abscope":
            inner = name.split(".")[1] if "." in name else ""
            assert inner in PURE_PACKAGES + PURE_MODULES, f"{path.name} imports impure {name}"
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & FORBIDDEN_CALLS, f"{path.name} calls {calls & FORBIDDEN_CALLS}"


@pytest.mark.parametrize("package", ["abscope.stats", "abscope.bandits", "abscope.service"])
def test_every_public_module_declares_all(package: str) -> None:
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        exported = getattr(module, "__all__", None)
        assert exported, f"{module.__name__} has no __all__"
        missing = [name for name in exported if not hasattr(module, name)]
        assert not missing, f"{module.__name__}.__all__ lists missing names {missing}"


# Dependencies point one way: api, web and cli call the service; the service calls the pure
# packages and the storage interface. These modules must never reach back up.
LAYER_RULES = {
    "schemas.py": {"abscope.api", "abscope.web", "abscope.service", "fastapi", "starlette"},
    "charts.py": {"abscope.api", "abscope.web", "abscope.service", "abscope.storage", "fastapi"},
    "storage/base.py": {"abscope.api", "abscope.service", "fastapi", "redis", "sqlite3"},
    "routing.py": {"abscope.api", "abscope.service", "abscope.storage", "fastapi", "redis"},
    "reports.py": {"abscope.api", "abscope.service", "abscope.storage.redis", "fastapi", "redis"},
    # Results, the gate and the monitor judge guardrails here: pure, over counts already read.
    "metric_analysis.py": {"abscope.api", "abscope.service", "abscope.storage", "fastapi", "redis"},
    "metric_reports.py": {"abscope.api", "abscope.service", "abscope.storage", "fastapi", "redis"},
    "cuped_reports.py": {"abscope.api", "abscope.service", "abscope.storage", "fastapi", "redis"},
    "gate.py": {"abscope.api", "abscope.service", "abscope.storage", "fastapi", "redis"},
    # The list's summary: pure, over counts already read.
    "summaries.py": {"abscope.api", "abscope.service", "abscope.storage", "fastapi", "redis"},
    "metric_series.py": {"abscope.api", "abscope.service", "abscope.storage.redis", "fastapi"},
    # Quantile metrics in the results and as guardrails: pure, over counters read.
    "quantile_reports.py": {"abscope.api", "abscope.service", "abscope.storage", "fastapi"},
    # The store's timing wrapper knows nothing of what the figures are for (Prometheus).
    "storage/instrumented.py": {"abscope.api", "abscope.service", "fastapi", "prometheus_client"},
    "logs.py": {"abscope.api", "abscope.service", "abscope.storage", "fastapi", "uvicorn"},
    # The SQLite store's parts point down: the store uses the batch code, which uses the schema.
    "storage/sqlite_schema.py": {"abscope.api", "abscope.service", "abscope.storage", "fastapi"},
    "storage/sqlite_events.py": {
        "abscope.api",
        "abscope.service",
        "abscope.storage.sqlite",
        "fastapi",
        "redis",
    },
}


@pytest.mark.parametrize(("module", "forbidden"), sorted(LAYER_RULES.items()))
def test_lower_layers_never_import_upper_ones(module: str, forbidden: set[str]) -> None:
    tree = ast.parse((SRC / module).read_text(), filename=module)
    for name in _imports(tree):
        assert not any(name == f or name.startswith(f + ".") for f in forbidden), (
            f"{module} imports {name}"
        )


def _imported_names(path: Path) -> list[str]:
    """Every module the source file ``path`` of abscope imports (:func:`_names_in`)."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return _names_in(path.read_text(), ".".join(("abscope", *parts[:-1])))


def _names_in(source: str, package: str) -> list[str]:
    """Every module a module of ``package`` imports, by its absolute name: relative imports
    resolved, and ``from abscope import api`` counted as ``abscope.api`` as well."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.append(module)
            names.extend(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_imported_names_resolve_relative_and_from_imports() -> None:
    source = "\n".join(
        [
            "import numpy.linalg",
            "from ..api import deps",
            "from . import traffic",
            "from abscope import web",
        ]
    )
    assert _names_in(source, "abscope.service") == [
        "numpy.linalg",
        "abscope.api",
        "abscope.api.deps",
        "abscope.service",
        "abscope.service.traffic",
        "abscope",
        "abscope.web",
    ]


def _is_under(name: str, prefixes: set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


SERVICE_MODULES = sorted((SRC / "service").glob("*.py"))
# The use cases know nothing of how they are called: no HTTP framework, server or client,
# and none of the layers that call them.
SERVICE_FORBIDDEN = {
    "abscope.api",
    "abscope.web",
    "abscope.cli",
    "abscope.client",
    "fastapi",
    "starlette",
    "httpx",
    "uvicorn",
}
# Only these call the use cases (the package itself included).
SERVICE_CALLERS = ("api", "web", "cli", "service")


def test_the_service_is_a_package_of_modules() -> None:
    assert not (SRC / "service.py").exists()
    names = {path.stem for path in SERVICE_MODULES}
    assert {"__init__", "experiments", "traffic", "analysis", "facade"} <= names


@pytest.mark.parametrize("path", SERVICE_MODULES, ids=lambda p: p.name)
def test_service_modules_never_import_the_layers_above(path: Path) -> None:
    for name in _imported_names(path):
        assert not _is_under(name, SERVICE_FORBIDDEN), f"service/{path.name} imports {name}"


@pytest.mark.parametrize(
    "path",
    [p for p in SERVICE_MODULES if p.stem not in ("__init__", "facade")],
    ids=lambda p: p.name,
)
def test_the_service_parts_never_import_the_facade(path: Path) -> None:
    """Inside the package too, imports point one way: the facade composes the parts, and a
    part imports only the parts below it (never the facade, nor the package, which imports
    the facade)."""
    for name in _imported_names(path):
        assert name != "abscope.service", f"service/{path.name} imports the package"
        assert not _is_under(name, {"abscope.service.facade"}), (
            f"service/{path.name} imports {name}"
        )


def _non_callers() -> list[Path]:
    return sorted(
        path
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0].removesuffix(".py") not in SERVICE_CALLERS
    )


def test_there_are_modules_below_the_service() -> None:
    below = {path.relative_to(SRC).parts[0] for path in _non_callers()}
    assert {"stats", "bandits", "assignment", "storage", "serving.py", "routing.py"} <= below


@pytest.mark.parametrize("path", _non_callers(), ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_upper_layers_import_the_service(path: Path) -> None:
    """The pure packages, the storage, serving and the SDK are called by the use cases, or
    beside them: none of them reaches up into ``abscope.service``."""
    for name in _imported_names(path):
        assert not _is_under(name, {"abscope.service"}), f"{path.relative_to(SRC)} imports {name}"


def test_charts_is_pure() -> None:
    """charts.py turns results into figures: plotly and the pure packages only, no I/O."""
    tree = ast.parse((SRC / "charts.py").read_text())
    allowed = ALLOWED_ROOTS | {"plotly", "datetime", "base64"}
    for name in _imports(tree):
        root = name.split(".")[0]
        assert root in allowed, f"charts.py imports {name}"
        if root == "abscope":
            assert name.split(".")[1] in PURE_PACKAGES, f"charts.py imports {name}"


# The command line's management commands run with the SDK and typer alone (the cli extra):
# at module level, abscope/cli/ imports the standard library, typer, the SDK and itself; the
# statistics, the simulator and the server are imported inside the commands that need them
# (tests/unit/test_cli.py runs them with those packages blocked).
CLI_MODULE_LEVEL = ("abscope.cli", "abscope.client", "abscope.jsonable", "typer")


def _module_level_imports(body: list[ast.stmt]) -> list[str]:
    """The imports a module runs when it is imported: not those inside functions, nor under
    ``if TYPE_CHECKING``."""
    names: list[str] = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            continue  # annotations only
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.extend(_imports(node))
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list):
                names.extend(_module_level_imports([n for n in inner if isinstance(n, ast.stmt)]))
    return names


@pytest.mark.parametrize("path", sorted((SRC / "cli").glob("*.py")), ids=lambda p: p.name)
def test_cli_modules_import_the_heavy_packages_inside_commands_only(path: Path) -> None:
    import sys

    tree = ast.parse(path.read_text(), filename=str(path))
    names = _module_level_imports(tree.body)
    assert names, f"cli/{path.name}: no imports found (is the walk right?)"
    for name in names:
        root = name.split(".")[0]
        allowed = (
            root in sys.stdlib_module_names
            or name == "abscope"  # __version__
            or any(name == a or name.startswith(a + ".") for a in CLI_MODULE_LEVEL)
        )
        assert allowed, f"cli/{path.name} imports {name} at module level"
