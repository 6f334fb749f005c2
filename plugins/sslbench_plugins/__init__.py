"""sslbench's built-in plugins.

Each module is registered in the ``sslbench`` entry-point group of sslbench's pyproject.toml,
exactly as a third-party plugin would be; the core never imports this package by name.
"""
