"""Operator and maintainer tools behind the CLI and the Makefile: status, tail, schemas."""
