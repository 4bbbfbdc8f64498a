"""Provides the engine's search layer."""
