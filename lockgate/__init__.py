"""lockgate: end-to-end ML pipelines with a gate between every stage."""

__version__ = "0.1.0"
