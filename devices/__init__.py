"""Device profiles and remote runs (see the devices issue)."""
