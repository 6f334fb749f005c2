"""The built-in executors: local, ray and slurm (:mod:`sslbench.executor`)."""
