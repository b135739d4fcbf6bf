"""The ``graded`` command-line interface (one click group, one module per command)."""
