"""Test-only helpers that production code knows nothing about."""
