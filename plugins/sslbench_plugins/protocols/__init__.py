"""Built-in protocols: one plugin module each."""
