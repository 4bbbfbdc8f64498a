"""Provides the screens of the TUI, one per module."""
