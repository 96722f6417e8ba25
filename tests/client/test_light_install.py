"""``pip install abscope`` is the SDK alone: httpx and the standard library.

One test installs the repository into a fresh venv (no extras) and reads what pip put there;
another imports the SDK and routes a user with the server's packages made unimportable, so
an import of numpy, scipy, pydantic, fastapi, redis or plotly anywhere on the SDK's path
fails it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = ("numpy", "scipy", "pydantic", "fastapi", "starlette", "redis", "plotly", "typer")
# httpx and what it needs on Python 3.11, and the installer's own tools.
SDK_DISTRIBUTIONS = {
    "abscope", "httpx", "httpcore", "h11", "anyio", "idna", "certifi", "sniffio",
    "typing_extensions", "typing-extensions", "pip", "setuptools",
}  # fmt: skip

_BLOCKER = f"""
import sys
class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVER_PACKAGES!r}:
            raise ModuleNotFoundError(f"blocked: {{name}}")
sys.meta_path.insert(0, _Blocked())
"""

_USE_THE_SDK = """
import json, httpx
from abscope.client import Client
config = {"format": 1, "running": ["exp"], "experiments": {"exp": {
    "status": "running", "phase": 0, "mode": "hash", "control": "control",
    "variants": [{"name": "control", "model_id": "m1", "weight": 0.5},
                 {"name": "treatment", "model_id": "m2", "weight": 0.5}],
    "traffic_percentage": 50.0, "gate_seed": 0, "variant_seed": 0, "layer": None,
    "layer_intervals": [], "forced": {}, "serve": None}}}
sent = []
def handle(request):
    if request.url.path == "/sdk/config":
        return httpx.Response(200, json=config)
    events = json.loads(request.content)["events"]
    sent.extend(events)
    return httpx.Response(200, json={"results": [{"status": "counted"}] * len(events),
                                     "counted": len(events), "duplicates": 0})
with Client("http://abscope.test", transport=httpx.MockTransport(handle)) as client:
    decisions = [client.route(f"u{i}", "exp") for i in range(100)]
inside = sum(d.in_experiment for d in decisions)
assert {d.source for d in decisions} == {"local"}
assert len(sent) == inside > 0, (len(sent), inside)
print(json.dumps({"inside": inside, "loaded": sorted(
    m for m in __import__("sys").modules if m.split(".")[0] in %r)}))
"""


def test_the_sdk_runs_with_the_server_packages_blocked() -> None:
    code = _BLOCKER + _USE_THE_SDK % (SERVER_PACKAGES,)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["loaded"] == [] and 20 < outcome["inside"] < 80


def _site_packages_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_pip_install_without_extras_is_httpx_and_the_standard_library(tmp_path: Path) -> None:
    target = tmp_path / "sdk-venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, f"pip install failed:\n{install.stderr[-3000:]}"
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {item["name"].lower() for item in json.loads(listed.stdout)}
    assert names <= SDK_DISTRIBUTIONS, f"more than the SDK: {sorted(names - SDK_DISTRIBUTIONS)}"
    assert {"abscope", "httpx"} <= names
    run = subprocess.run(
        [str(python), "-c", _USE_THE_SDK % (SERVER_PACKAGES,)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # never the repository's own sources
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    server = subprocess.run(
        [str(python), "-c", "import abscope.stats"], capture_output=True, text=True, cwd=tmp_path
    )
    assert server.returncode != 0 and "numpy" in server.stderr  # the service is an extra
    site = next((target / "lib").glob("python3*/site-packages"))
    tools = sum(
        _site_packages_size(p) for p in site.iterdir() if p.name.startswith(("pip", "setuptools"))
    )
    size = _site_packages_size(site) - tools
    print(f"SDK install: {sorted(names - {'pip', 'setuptools'})}, {size / 1e6:.2f} MB")
    assert size < 10e6
