"""The plugin runtime: loader, manager, scheduler and the built-in plugins."""
