"""Counting visual primitives, an sslbench plugin."""
