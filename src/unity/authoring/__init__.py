"""Author tooling: scaffold a plugin package, load a plugin from a path, check and run it."""
