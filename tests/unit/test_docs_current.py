"""The README's configuration table lists every setting with its current default."""

from __future__ import annotations

from autosdlc_ws.config import describe_settings
from tests.conftest import REPO


def test_readme_config_table_is_current() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [
        f"| `{name}` | `{default}` | {comment} |"
        for name, default, comment in describe_settings()
        if f"| `{name}` | `{default}` | {comment} |" not in readme
    ]
    assert not missing, "README configuration table is stale (run `make docs`); rows expected:\n" + "\n".join(missing)


def test_readme_starts_with_the_two_commands() -> None:
    head = (REPO / "README.md").read_text(encoding="utf-8")[:800]
    assert "make run" in head and "make test" in head
