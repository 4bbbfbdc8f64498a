"""Provides the engine's run layer."""
