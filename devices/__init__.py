"""Device profiles (TOML, one per board), host detection, and runs on a device over TVM RPC or ssh."""
