#!/usr/bin/env bash
# Regenerates the pinned locks the container image installs, from pyproject.toml:
#   requirements/server.lock  the `server` extra (which includes `cli`) with every transitive
#                             dependency, exact versions and the sha256 of each of their files
#                             on PyPI, for any platform (a universal resolution: markers such
#                             as `sys_platform == 'win32'` say where a line applies);
#   requirements/build.lock   the build backend of [build-system] (hatchling) and its
#                             dependencies, likewise, to build the abscope wheel with
#                             --no-build-isolation.
# Everything runs in a clean venv made here and removed afterwards: uv (pinned below) resolves
# against PyPI alone (--no-config ignores any uv configuration of the machine), so what is
# installed in .venv has no say. The locks are then installed with --require-hashes into that
# clean venv, and `pip check` must pass, so a lock that does not install is never written.
# Run it (make lock) after changing a pin in pyproject.toml; tests/unit/test_lock.py fails
# until the locks agree with pyproject's pins.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
UV_VERSION=0.13.8
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "uv==$UV_VERSION"
compile=("$work/venv/bin/uv" pip compile --no-config --generate-hashes --universal
         --python-version 3.11
         --custom-compile-command "scripts/lock.sh")

"${compile[@]}" pyproject.toml --extra server --quiet -o "$work/server.lock"
"$work/venv/bin/python" -c '
import sys, tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))
' > "$work/build.in"
"${compile[@]}" "$work/build.in" --quiet -o "$work/build.lock"
# uv names its input file; the temporary path of build.in would change on every run.
sed -i "s|$work/build.in|pyproject.toml [build-system]|" "$work/build.lock"

# Both locks install, hash-checked, into the clean venv, and are consistent.
"$work/venv/bin/pip" install --quiet --require-hashes --no-deps --only-binary :all: \
  -r "$work/server.lock" -r "$work/build.lock"
"$work/venv/bin/pip" check

mkdir -p requirements
cp "$work/server.lock" "$work/build.lock" requirements/
echo "wrote requirements/server.lock ($(grep -c '^[a-z0-9]' requirements/server.lock) packages)" \
     "and requirements/build.lock ($(grep -c '^[a-z0-9]' requirements/build.lock) packages)"
