"""Classical image profiles (registered on import). Filled in by the classical-codec work."""
