"""The protocol core: plain values in and out, no I/O."""
