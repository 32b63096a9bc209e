"""Thin command-line entry points, one per job: parse config, call one pipeline function, exit."""
