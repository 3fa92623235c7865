"""Release artefacts carry the web dashboard: build it, or refuse to build the artefact.

The gateway serves ``src/autosdlc_ws/static/index.html`` at ``/``. That directory
is the Vite build of ``dashboard/`` and is not in git, so a wheel built from a
bare checkout would serve the fallback page ("The dashboard assets are not
built"). ``setup.py`` calls :func:`ensure_dashboard` before the sdist and before
a (non-editable) wheel's ``build_py``:

* in a checkout (``dashboard/`` is there) it always runs the Vite build, after
  ``npm ci`` when ``dashboard/node_modules`` is missing or older than the lock
  file. Always, not "when stale": the build takes about a second, and a
  freshness rule would have to know every input (the dashboard also compiles
  ``clients/typescript/src``) and trust file times that ``git checkout`` and
  copies do not keep;
* in an unpacked sdist (no ``dashboard/``) it builds nothing: the sdist carries
  the built files, so a wheel built from it needs no Node.js;
* either way it then checks the result (:func:`missing_files`) and raises
  :class:`DashboardBuildError` rather than let an artefact ship without it.

Editable installs (``pip install -e .``) never come here: developers run
``make dashboard`` (or ``make run``) when they want the page.

Plain standard library: this file runs inside the isolated build environment,
before the package or its dependencies are importable.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "DASHBOARD_DIR",
    "STATIC_DIR",
    "DashboardBuildError",
    "Runner",
    "ensure_dashboard",
    "missing_files",
    "needs_npm_ci",
]

#: Project-relative locations: the Vite project and where it writes (dashboard/vite.config.ts).
DASHBOARD_DIR = Path("dashboard")
STATIC_DIR = Path("src/autosdlc_ws/static")

#: Runs one command in a directory; raises ``subprocess.CalledProcessError`` on failure.
Runner = Callable[[Sequence[str], Path], None]

# `src="/assets/x.js"`, `href="/manifest.webmanifest"`: files the page loads from this origin.
_LOCAL_REFERENCE = re.compile(r"""\b(?:src|href)\s*=\s*["'](/(?!/)[^"'?#]*)""")


class DashboardBuildError(Exception):
    """The release artefact would not carry a working dashboard; the message says why and what to do."""


def _run(command: Sequence[str], cwd: Path) -> None:
    subprocess.run(list(command), cwd=cwd, check=True)


def needs_npm_ci(dashboard: Path) -> bool:
    """True when ``dashboard/node_modules`` is missing or older than ``package-lock.json``.

    ``npm ci`` writes ``node_modules/.package-lock.json`` (the Makefile's stamp too)."""
    stamp = dashboard / "node_modules" / ".package-lock.json"
    lock = dashboard / "package-lock.json"
    return not stamp.is_file() or stamp.stat().st_mtime < lock.stat().st_mtime


def missing_files(static: Path) -> list[str]:
    """What a built dashboard lacks: ``index.html``, or a file the page loads from ``/``.

    An empty list means the page and everything it references from this origin
    are there (a half-finished or foreign build would fail here)."""
    index = static / "index.html"
    if not index.is_file():
        return [str(index)]
    html = index.read_text(encoding="utf-8")
    references = sorted(set(_LOCAL_REFERENCE.findall(html)))
    return [str(static / ref.lstrip("/")) for ref in references if not (static / ref.lstrip("/")).is_file()]


def _build_from_checkout(dashboard: Path, run: Runner, which: Callable[[str], str | None]) -> None:
    npm = which("npm")
    if npm is None:
        raise DashboardBuildError(
            "autosdlc-ws: a wheel or sdist must carry the web dashboard, and building it from "
            "this checkout needs npm (Node.js >= 20.19), which is not on PATH. Install Node.js, "
            "or build the wheel from the sdist (it carries the built dashboard); for development "
            "`pip install -e .` needs neither.")
    try:
        if needs_npm_ci(dashboard):
            run([npm, "ci", "--no-audit", "--no-fund"], dashboard)
        run([npm, "run", "build"], dashboard)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DashboardBuildError(
            f"autosdlc-ws: the dashboard build failed ({exc}); see the npm output above. "
            "A wheel or sdist is not built without the dashboard.") from exc


def ensure_dashboard(project: Path, *, run: Runner = _run,
                     which: Callable[[str], str | None] = shutil.which,
                     log: Callable[[str], None] = print) -> None:
    """Build the dashboard into ``static/`` when ``project`` is a checkout, then check it is whole.

    Raises :class:`DashboardBuildError` when it cannot be built or is incomplete."""
    dashboard = project / DASHBOARD_DIR
    static = project / STATIC_DIR
    if (dashboard / "package.json").is_file():
        log(f"autosdlc-ws: building the dashboard ({dashboard} -> {static})")
        _build_from_checkout(dashboard, run, which)
    else:
        log(f"autosdlc-ws: no {DASHBOARD_DIR}/ here (an sdist): using the dashboard it carries")
    missing = missing_files(static)
    if missing:
        raise DashboardBuildError(
            "autosdlc-ws: the built dashboard is incomplete, missing " + ", ".join(missing)
            + ". A wheel or sdist without it would serve the fallback page at /; "
            "build from a checkout with npm (`make dist`), or from a complete sdist.")
