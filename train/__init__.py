"""Training: data readers, splits, the seed CNN and its improvements, the training loop.

Submodules that need torch import it themselves; `datasets` does not, so the runtime can read
folders of photos for evaluation without the training stack.
"""
