"""Benchmarks: one module per benchmark; each drives the pipeline like a user would, so they sit in
the tools layer beside ``eval/``, never inside the codec package they measure (see ``cli`` for the
subcommands)."""
