"""The build hook's decisions (build_dashboard.py), on temporary trees with a scripted npm."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from build_dashboard import DASHBOARD_DIR, STATIC_DIR, DashboardBuildError, ensure_dashboard, missing_files

PAGE = '<script type="module" src="/assets/app.js"></script><link rel="stylesheet" href="/assets/app.css">'


def write_static(project: Path, page: str = PAGE, files: Sequence[str] = ("assets/app.js", "assets/app.css")) -> None:
    static = project / STATIC_DIR
    (static / "assets").mkdir(parents=True, exist_ok=True)
    (static / "index.html").write_text(page, encoding="utf-8")
    for name in files:
        (static / name).write_text("x", encoding="utf-8")


def checkout(project: Path, *, installed: bool) -> Path:
    """A project tree with dashboard/ (package.json, lock file; node_modules if `installed`)."""
    dashboard = project / DASHBOARD_DIR
    dashboard.mkdir(parents=True)
    (dashboard / "package.json").write_text("{}", encoding="utf-8")
    (dashboard / "package-lock.json").write_text("{}", encoding="utf-8")
    if installed:
        (dashboard / "node_modules").mkdir()
        (dashboard / "node_modules" / ".package-lock.json").write_text("{}", encoding="utf-8")
    return dashboard


class FakeNpm:
    """Records commands; `npm run build` writes the dashboard unless told to fail."""

    def __init__(self, project: Path, *, build_writes: bool = True, fail: bool = False) -> None:
        self.project = project
        self.build_writes = build_writes
        self.fail = fail
        self.commands: list[tuple[str, ...]] = []

    def __call__(self, command: Sequence[str], cwd: Path) -> None:
        assert cwd == self.project / DASHBOARD_DIR
        self.commands.append(tuple(command[1:]))
        if self.fail:
            raise subprocess.CalledProcessError(1, list(command))
        if tuple(command[1:3]) == ("run", "build") and self.build_writes:
            write_static(self.project)


def npm_on_path(_: str) -> str:
    return "/usr/bin/npm"


def no_npm(_: str) -> None:
    return None


def quiet(_: str) -> None:
    return None


def test_a_checkout_always_rebuilds_even_over_an_existing_build(tmp_path: Path) -> None:
    checkout(tmp_path, installed=True)
    write_static(tmp_path)
    npm = FakeNpm(tmp_path)
    ensure_dashboard(tmp_path, run=npm, which=npm_on_path, log=quiet)
    assert npm.commands == [("run", "build")]


def test_a_checkout_without_node_modules_installs_them_first(tmp_path: Path) -> None:
    checkout(tmp_path, installed=False)
    npm = FakeNpm(tmp_path)
    ensure_dashboard(tmp_path, run=npm, which=npm_on_path, log=quiet)
    assert npm.commands == [("ci", "--no-audit", "--no-fund"), ("run", "build")]


def test_node_modules_older_than_the_lock_file_are_reinstalled(tmp_path: Path) -> None:
    dashboard = checkout(tmp_path, installed=True)
    stamp = dashboard / "node_modules" / ".package-lock.json"
    os.utime(stamp, (1_000_000, 1_000_000))
    npm = FakeNpm(tmp_path)
    ensure_dashboard(tmp_path, run=npm, which=npm_on_path, log=quiet)
    assert npm.commands[0] == ("ci", "--no-audit", "--no-fund")


def test_a_checkout_without_npm_refuses_to_build(tmp_path: Path) -> None:
    checkout(tmp_path, installed=True)
    write_static(tmp_path)  # even a previous build is not trusted: it may be stale
    with pytest.raises(DashboardBuildError, match="needs npm"):
        ensure_dashboard(tmp_path, run=FakeNpm(tmp_path), which=no_npm, log=quiet)


def test_a_failing_npm_build_fails_the_artefact(tmp_path: Path) -> None:
    checkout(tmp_path, installed=True)
    write_static(tmp_path)
    with pytest.raises(DashboardBuildError, match="dashboard build failed"):
        ensure_dashboard(tmp_path, run=FakeNpm(tmp_path, fail=True), which=npm_on_path, log=quiet)


def test_a_build_that_writes_nothing_fails_the_artefact(tmp_path: Path) -> None:
    checkout(tmp_path, installed=True)
    with pytest.raises(DashboardBuildError, match=r"missing .*index\.html"):
        ensure_dashboard(tmp_path, run=FakeNpm(tmp_path, build_writes=False), which=npm_on_path, log=quiet)


def test_an_sdist_tree_uses_the_dashboard_it_carries_without_npm(tmp_path: Path) -> None:
    write_static(tmp_path)
    npm = FakeNpm(tmp_path)
    ensure_dashboard(tmp_path, run=npm, which=no_npm, log=quiet)
    assert npm.commands == []


def test_an_sdist_tree_without_the_dashboard_fails(tmp_path: Path) -> None:
    with pytest.raises(DashboardBuildError, match="incomplete"):
        ensure_dashboard(tmp_path, run=FakeNpm(tmp_path), which=no_npm, log=quiet)


def test_missing_files_names_every_local_file_the_page_loads(tmp_path: Path) -> None:
    page = PAGE + '<link rel="manifest" href="/manifest.webmanifest"><link rel="icon" href="data:,">' \
        '<a href="https://example.com/x.js"></a><script src="//cdn.example/y.js"></script>'
    write_static(tmp_path, page=page, files=("assets/app.js",))
    static = tmp_path / STATIC_DIR
    assert missing_files(static) == [str(static / "assets/app.css"), str(static / "manifest.webmanifest")]
    (static / "assets/app.css").write_text("x", encoding="utf-8")
    (static / "manifest.webmanifest").write_text("{}", encoding="utf-8")
    assert missing_files(static) == []
