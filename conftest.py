"""Root conftest: the harness plugin is loaded through its pytest11 entry point (pyproject.toml)."""
