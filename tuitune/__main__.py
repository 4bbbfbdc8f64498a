"""Provides ``python -m tuitune``."""

from tuitune.cli import main

raise SystemExit(main())
