"""Rewrite the README's configuration table from `autosdlc_ws.config` (make docs)."""

from __future__ import annotations

import re
from pathlib import Path

from autosdlc_ws.config import config_table_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
text = README.read_text(encoding="utf-8")
pattern = re.compile(r"(<!-- config-table[^>]*-->\n).*?(<!-- /config-table -->)", re.S)
README.write_text(pattern.sub(lambda m: m.group(1) + config_table_markdown() + "\n" + m.group(2), text),
                  encoding="utf-8")
