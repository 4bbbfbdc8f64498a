"""Provides the built-in trainer behind presets: TOML presets, datasets, models and the training loop.

``tuitune.training.presets`` imports without torch (the command line lists presets fast); ``data``,
``models`` and ``loop`` import torch.
"""
