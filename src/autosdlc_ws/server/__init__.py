"""The asyncio layer: sockets, HTTP routes and timers around the protocol core."""
