"""Subcommands of the ``graphattn`` command line (see :mod:`graphattn.cli`)."""
