"""The container image, rehearsed without a Docker engine: the Dockerfile's steps outside Docker.

:class:`Rehearsal` lays the image out under a temporary root: it copies the build context the
builder stage ``COPY``s (without ``__pycache__``, as .dockerignore), builds the abscope wheel
with the locked build backend (``requirements/build.lock``, ``--no-build-isolation``),
installs ``requirements/server.lock`` hash-checked into a fresh venv at the image's venv path
(under the root) and the wheel with ``--no-deps``, and makes the data directory (the
runtime ``WORKDIR``) owned by the image's uid. :meth:`Rehearsal.command` and
:meth:`Rehearsal.environment` are the image's ``CMD`` and ``ENV``, read from the Dockerfile,
with the image's absolute paths moved under the root and the port changed to a free one;
:meth:`Rehearsal.popen` runs a command as the image's user: as root, through
``setpriv --reuid --regid --clear-groups``; otherwise as the current user, who must not be
root.

The interpreter is a Python of the image's minor version that the image's uid can run (a
venv keeps a link to its interpreter, and root's own may sit in a directory other users
cannot enter). The venvs are made ``--without-pip`` and filled by the test runner's own pip
(``pip --python``): ensurepip alone cost 8 s a venv, and the Debian interpreter's bundled pip
took 26 s for the lock that a current pip installs in 15 (7 without compiling bytecode,
which the rehearsal skips). Wheels come from pip's cache (or
the machine's mirror), so a second run downloads nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from tests.deploy.files import REPO, RuntimeImage, runtime_image

__all__ = ["PIP_INSTALL", "Rehearsal"]

PIP_INSTALL = ("--require-hashes", "--no-deps", "--only-binary", ":all:")
"""The options of the Dockerfile's ``pip install`` of a lock (checked against its text)."""
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")  # as .dockerignore


def _run(command: Sequence[str | Path], **kwargs: Any) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    shown = " ".join(map(str, command))
    assert done.returncode == 0, f"{shown} failed:\n{done.stdout}\n{done.stderr}"


class Rehearsal:
    """The image laid out under ``root`` (a fresh temporary directory, removed by :meth:`close`)."""

    def __init__(self) -> None:
        self.image: RuntimeImage = runtime_image()
        if os.geteuid() == 0:
            self.uid, self.gid = self.image.uid, self.image.gid
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.fail("setpriv is missing: install Debian's util-linux", pytrace=False)
            self._as_user = [
                setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--",
            ]  # fmt: skip
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            assert self.uid != 0, "the rehearsal must not serve as root"
            self._as_user = []
        self.python = self._interpreter()
        self.root = Path(tempfile.mkdtemp(prefix="abscope-image-"))
        self.root.chmod(0o755)  # the image's user must reach the venv and the data directory

    def path(self, image_path: str) -> Path:
        """Where an absolute path of the image lies in the rehearsal."""
        return self.root / image_path.lstrip("/")

    def _rebase(self, value: str) -> str:
        for image_path in (self.image.venv, self.image.workdir):
            value = re.sub(
                rf"(?<![\w/]){re.escape(image_path)}(?=/|:|$)", str(self.path(image_path)), value
            )
        return value

    def _interpreter(self) -> str:
        """A Python of the image's X.Y that the image's user can run."""
        wanted = re.match(r"python:(\d+\.\d+)", self.image.base)
        assert wanted, f"the runtime base is not an official python image: {self.image.base}"
        assert wanted[1] == f"{sys.version_info[0]}.{sys.version_info[1]}", (
            f"the image runs Python {wanted[1]}, the rehearsal {sys.version.split()[0]}: the"
            " lock's wheels would not be the image's"
        )
        name = f"python{wanted[1]}"
        candidates = [sys._base_executable, f"/usr/local/bin/{name}", f"/usr/bin/{name}"]
        for candidate in dict.fromkeys(candidates):
            if not os.access(candidate, os.X_OK):
                continue
            probe = subprocess.run(
                [*self._as_user, candidate, "-c", "import venv"],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                return candidate
        pytest.fail(
            f"no {name} that uid {self.uid} can run (tried {', '.join(candidates)}): install"
            f" Debian's {name}",
            pytrace=False,
        )

    def build(self) -> None:
        """The builder stage: the build context, the wheel, the venv; then the data directory."""
        context = self.path(self.image.builder_workdir)
        for sources, destination in self.image.builder_copies:
            target = context / destination
            for source in sources:
                origin = REPO / source
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=_IGNORED, dirs_exist_ok=True)
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
        pip_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        pip_env.pop("PYTHONPATH", None)  # the venvs see their own packages only
        build = self.root / "opt" / "build"
        venv = self.path(self.image.venv)
        dist = self.root / "dist"
        for directory in (build, venv):
            _run([self.python, "-m", "venv", "--without-pip", str(directory)], env=pip_env)

        def pip(target: Path, *arguments: str | Path) -> None:
            _run([sys.executable, "-m", "pip", "--python", target / "bin" / "python", *arguments],
                 env=pip_env)  # fmt: skip

        lock = context / "requirements"
        pip(build, "install", *PIP_INSTALL, "-r", lock / "build.lock")
        # --no-compile: the image compiles the venv's bytecode at install; here that cost 14 s
        # of the 21 s the lock took, and only saves the service compiling what it imports.
        pip(venv, "install", *PIP_INSTALL, "--no-compile", "-r", lock / "server.lock")
        pip(build, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", dist, context)
        wheels = sorted(dist.glob("abscope-*.whl"))
        assert len(wheels) == 1, wheels
        pip(venv, "install", "--no-deps", wheels[0])
        pip(venv, "check")
        data = self.path(self.image.workdir)
        data.mkdir(parents=True)
        os.chown(data, self.uid, self.gid)
        data.chmod(0o750)

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The container's environment: the image's ENV (paths under the root), HOME, and
        ``extra`` (what ``docker run -e`` would add). Nothing of the caller's."""
        env = {key: self._rebase(value) for key, value in self.image.env.items()}
        env["HOME"] = str(self.path(self.image.workdir))
        env.update(extra or {})
        return env

    def command(self, command: Sequence[str], port: int) -> list[str]:
        """``command`` (the image's CMD or HEALTHCHECK) for ``port``: the program found on the
        image's PATH, inside the rehearsal's venv, and the image's port replaced."""
        program = shutil.which(command[0], path=self.environment()["PATH"])
        assert program is not None, f"{command[0]} is not on the image's PATH"
        assert Path(program).is_relative_to(self.path(self.image.venv)), program
        (exposed,) = self.image.expose
        arguments = [
            argument.replace(f":{exposed}/", f":{port}/") if "://" in argument else argument
            for argument in command[1:]
        ]
        if "--port" in arguments:
            arguments[arguments.index("--port") + 1] = str(port)
        return [program, *arguments]

    def popen(
        self, command: Sequence[str], env: Mapping[str, str], log: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        """``command`` as the image's user, in the image's WORKDIR, logging to ``log``."""
        return subprocess.Popen(
            [*self._as_user, *command],
            cwd=self.path(self.image.workdir),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
