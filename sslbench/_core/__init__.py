"""sslbench's machinery: the runner, the grid and its units, caches, records, the plugin
host, the command line, reports' statistics. Private: a plugin imports none of it (a test
checks the built-in plugins and the examples); what a plugin may import is the public API at
the top of the package (docs/plugins.md, "The public API"), kept stable."""
