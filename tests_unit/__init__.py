"""Unit tests for the harness (no board, no network)."""
