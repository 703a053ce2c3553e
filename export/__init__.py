"""Export and compile trained checkpoints into deployable artifacts, one row per format in formats.py."""
