"""The release artefacts as a user gets them (issue 16 item 2).

Builds the sdist and, from it, the wheel (``python -m build``, as ``make dist``
does), installs the wheel without extras into a fresh virtual environment that
has nothing else (not even pip: the project's pip installs into it, and fetches
the runtime dependencies), starts its ``autosdlc-ws serve`` and asks it for the
dashboard and a schema. Building the wheel from the sdist, not the checkout, is
what proves the sdist carries the dashboard: that build has no npm to call.

About 20-30 s: two isolated build environments, one dependency install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from build_dashboard import STATIC_DIR
from tests.conftest import JWT_SECRET, REPO, free_port, missing, timeout

pytestmark = pytest.mark.integration

NOT_BUILT = "The dashboard assets are not built"


@dataclass(frozen=True)
class Artefacts:
    sdist: Path
    wheel: Path
    log: str


@dataclass(frozen=True)
class CleanVenv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def script(self) -> Path:
        return self.root / "bin" / "autosdlc-ws"


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: nothing of this checkout's venv or the test settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AUTOSDLC_WS_") and k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env.update(extra)
    return env


def run(*command: str | Path, seconds: float, cwd: Path = REPO,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env or user_env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout(seconds))


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Artefacts:
    if shutil.which("npm") is None:
        missing("npm", "Node.js >= 20.19; the wheel carries the dashboard it builds")
    out = tmp_path_factory.mktemp("dist")
    done = run(sys.executable, "-m", "build", "--outdir", out, REPO, seconds=180)
    assert done.returncode == 0, done.stdout
    (sdist,) = out.glob("autosdlc_ws-*.tar.gz")
    (wheel,) = out.glob("autosdlc_ws-*-py3-none-any.whl")
    return Artefacts(sdist, wheel, done.stdout)


@pytest.fixture(scope="module")
def venv(artefacts: Artefacts, tmp_path_factory: pytest.TempPathFactory) -> CleanVenv:
    clean = CleanVenv(tmp_path_factory.mktemp("user") / "venv")
    made = run(sys.executable, "-m", "venv", "--without-pip", clean.root, seconds=60)
    assert made.returncode == 0, made.stdout
    installed = run(sys.executable, "-m", "pip", "--python", clean.python, "install", "--quiet",
                    "--disable-pip-version-check", artefacts.wheel, seconds=240)
    assert installed.returncode == 0, installed.stdout
    return clean


@pytest.fixture(scope="module")
def served(venv: CleanVenv) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(venv.script), "serve", "--port", str(port), "--broker", "memory"],
                            cwd=venv.root, env=user_env(AUTOSDLC_WS_JWT_SECRET=JWT_SECRET),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + timeout(20)
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the installed gateway did not start:\n{proc.communicate()[0]}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.communicate(timeout=timeout(20))


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=timeout(5)) as reply:
        return reply.status, reply.headers.get("Content-Type", ""), reply.read().decode("utf-8")


def test_the_sdist_carries_the_built_dashboard_and_the_wheel_is_built_from_it(artefacts: Artefacts) -> None:
    with tarfile.open(artefacts.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert f"{STATIC_DIR}/index.html" in names
    assert any(name.startswith(f"{STATIC_DIR}/assets/") and name.endswith(".js") for name in names)
    assert {"setup.py", "build_dashboard.py", "src/autosdlc_ws/schemas/agent_status.json"} <= names
    assert not any(name.startswith("dashboard/") for name in names)  # so its wheel cannot call npm
    assert "using the dashboard it carries" in artefacts.log


def test_the_wheel_carries_the_dashboard_and_the_schemas(artefacts: Artefacts) -> None:
    with zipfile.ZipFile(artefacts.wheel) as wheel:
        names = set(wheel.namelist())
        page = wheel.read("autosdlc_ws/static/index.html").decode("utf-8")
    assert "autosdlc_ws/schemas/agent_status.json" in names and "autosdlc_ws/py.typed" in names
    scripts = [part.split('"')[0] for part in page.split('src="/')[1:]]
    assert scripts and all(f"autosdlc_ws/static/{script}" in names for script in scripts)


def test_the_installed_gateway_serves_the_dashboard(served: str) -> None:
    status, content_type, page = get(f"{served}/")
    assert status == 200 and content_type.startswith("text/html")
    assert NOT_BUILT not in page and '<div id="root">' in page
    script = page.split('src="', 1)[1].split('"', 1)[0]
    status, content_type, code = get(served + script)
    assert status == 200 and "javascript" in content_type and len(code) > 1000


def test_the_installed_gateway_serves_the_schemas(served: str) -> None:
    status, content_type, body = get(f"{served}/schemas/agent_status.json")
    assert status == 200 and content_type.startswith("application/schema+json")
    committed = (REPO / "src/autosdlc_ws/schemas/agent_status.json").read_text(encoding="utf-8")
    assert json.loads(body) == json.loads(committed)


def test_the_sdk_imports_from_the_clean_venv_without_extras(venv: CleanVenv) -> None:
    probe = ("import importlib.util, autosdlc_ws.client as sdk; "
             "print(sdk.__file__); print(sdk.AutoSDLCWebSocket.__name__); "
             "print([m for m in ('yaml', 'pytest', 'pip') if importlib.util.find_spec(m)])")
    done = run(venv.python, "-c", probe, cwd=venv.root, seconds=30)
    assert done.returncode == 0, done.stdout
    location, client, extras = done.stdout.splitlines()
    assert Path(location).is_relative_to(venv.root)  # the wheel's copy, not this checkout's src/
    assert client == "AutoSDLCWebSocket"
    assert extras == "[]"
