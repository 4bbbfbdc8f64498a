"""What the test packages share: a project folder run through the real entry point (project.py), the
TUI tests' presets and polling (tui.py), and dataset files in the formats of the real downloads
(datasets.py)."""
