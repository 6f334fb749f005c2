"""BYOL as an sslbench plugin (see plugin.py)."""
