"""Event sources without I/O: GitHub webhook mapping and the demo simulator."""
