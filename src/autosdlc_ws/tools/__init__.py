"""Operator tools behind the CLI: status, tail."""
