"""Without npm: a release wheel refuses to build from a checkout; an editable install does not care.

Both run the real build backend (``setup.py`` via ``python -m build`` or its
API) in an isolated environment with a PATH that holds no npm. About 4 s each.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from build_dashboard import STATIC_DIR
from tests.conftest import REPO
from tests.packaging.test_wheel import run, user_env

pytestmark = pytest.mark.integration

EDITABLE = """
import sys
from build import ProjectBuilder
from build.env import DefaultIsolatedEnv

with DefaultIsolatedEnv() as env:
    builder = ProjectBuilder.from_isolated_env(env, sys.argv[1])
    env.install(builder.build_system_requires)
    env.install(builder.get_requires_for_build("editable"))
    print(builder.build("editable", sys.argv[2]))
"""


def test_a_wheel_from_a_checkout_without_npm_fails_with_the_reason(tmp_path: Path) -> None:
    done = run(sys.executable, "-m", "build", "--wheel", "--outdir", tmp_path, REPO, seconds=120,
               env=user_env(PATH=str(tmp_path)))
    assert done.returncode != 0
    assert "needs npm (Node.js >= 20.19), which is not on PATH" in done.stdout
    assert list(tmp_path.glob("*.whl")) == []


def test_an_editable_build_needs_no_npm_and_builds_no_dashboard(tmp_path: Path) -> None:
    index = REPO / STATIC_DIR / "index.html"
    before = index.stat().st_mtime_ns if index.exists() else None
    done = run(sys.executable, "-c", EDITABLE, REPO, tmp_path, seconds=120, env=user_env(PATH=str(tmp_path)))
    assert done.returncode == 0, done.stdout
    assert Path(done.stdout.strip().splitlines()[-1]).name.startswith("autosdlc_ws-")
    assert "building the dashboard" not in done.stdout
    assert (index.stat().st_mtime_ns if index.exists() else None) == before
