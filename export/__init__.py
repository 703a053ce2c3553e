"""Export and compile trained checkpoints into deployable artifacts (see the export issue)."""
