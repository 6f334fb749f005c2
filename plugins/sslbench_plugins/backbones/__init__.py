"""Built-in backbones: one plugin module each."""
