"""Provides the widgets of the TUI; they talk to their screens through messages."""
