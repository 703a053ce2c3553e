"""Training: the model families, augmentation, the image cache, the training loop and the study.

Submodules that need torch import it themselves. The dataset readers and splits live in
runtime/datasets.py (a device scores folders of photos with them); training imports them from there.
"""
