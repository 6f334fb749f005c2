"""Built-in tasks: one plugin module each."""
