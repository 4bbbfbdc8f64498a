"""Provides the engine's store layer."""
