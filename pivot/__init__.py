"""pivot: a rule compiler for data pipelines."""

__version__ = "0.1.0"
