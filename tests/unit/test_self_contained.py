"""A fresh clone tests alone: no test or build file reaches outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import FIXTURES, REPO

# Where tests and build scripts live; node_modules and generated output are not ours.
SCANNED = ["tests", "clients/typescript/test", "clients/typescript/scripts", "dashboard/test",
           "dashboard/scripts", "scripts", "benchmarks", "tools", "Makefile", ".ci", "setup.py",
           "build_dashboard.py"]
SUFFIXES = {".py", ".ts", ".tsx", ".mjs", ".js", ".sh", ""}
# the sibling folder of the checkout, `/work/...`, or climbing past the repository root by `parents[N]`
# (The folder's name is put together here so this file does not name it itself.)
SIBLING = "shared"
OUTSIDE = re.compile(r"\.\./" + SIBLING + r"""|["'/]work/|/""" + SIBLING + r"/fixtures|parents\[[3-9]\]")


def scanned_files() -> list[Path]:
    files: list[Path] = []
    for entry in SCANNED:
        root = REPO / entry
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += [p for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES
                      and "node_modules" not in p.parts and "fixtures" not in p.parts]
    return files


def test_nothing_reads_outside_the_repository() -> None:
    offenders = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
                 for path in scanned_files() if path != Path(__file__)
                 for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
                 if OUTSIDE.search(line)]
    assert offenders == []


def test_fixtures_are_in_the_repository_with_their_licence() -> None:
    assert len(list((FIXTURES / "github-webhooks").glob("*.json"))) >= 15
    assert (FIXTURES / "github-webhooks" / "LICENSE.octokit-webhooks").is_file()
    assert sorted(p.name for p in (FIXTURES / "events").glob("*.json")) == [
        "agent_status.json", "tdd_phase_change.json"]
