"""Provides the Textual UI of tuitune: the home screen, new sessions, the live dashboard, manual mode."""
