"""Integrations with training frameworks, each an optional extra imported only when used:

- ``tuitune.integrations.lightning``: ``TuituneCallback`` for a PyTorch Lightning ``Trainer``
  (``pip install "tuitune[lightning]"``);
- ``tuitune.integrations.transformers``: ``TuituneCallback`` for a Hugging Face ``Trainer`` and
  ``hf_search`` (``pip install "tuitune[transformers]"``).
"""
