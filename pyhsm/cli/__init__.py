"""The `pyhsm` management command. It drives the engine in-process (never the C ABI)."""
