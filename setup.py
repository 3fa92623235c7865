"""Setuptools hooks: every wheel and sdist carries the built web dashboard.

All metadata lives in pyproject.toml; this file only swaps in two commands
that call ``build_dashboard.ensure_dashboard`` first (why and how: that
module's docstring). Editable installs skip it: no npm for developers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.errors import SetupError

PROJECT = Path(__file__).resolve().parent
sys.path.insert(0, str(PROJECT))  # the build backend does not put the project on sys.path

from build_dashboard import DashboardBuildError, ensure_dashboard  # noqa: E402


def _ensure_dashboard() -> None:
    try:
        ensure_dashboard(PROJECT)
    except DashboardBuildError as exc:
        raise SetupError(str(exc)) from None


class BuildPyWithDashboard(build_py):
    """``build_py`` that first builds (or checks) the dashboard, except for editable installs."""

    def run(self) -> None:
        if not self.editable_mode:
            _ensure_dashboard()
            # The package-data file list may have been computed before static/ was rebuilt.
            self.__dict__.pop("data_files", None)
        super().run()


class SdistWithDashboard(sdist):
    """``sdist`` that first builds the dashboard, so its files are in the archive (MANIFEST.in)."""

    def run(self) -> None:
        _ensure_dashboard()
        super().run()


setup(cmdclass={"build_py": BuildPyWithDashboard, "sdist": SdistWithDashboard})
