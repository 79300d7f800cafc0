"""kfpkit.cli: the ``kfpkit`` command line, one module per subcommand (see :mod:`kfpkit.cli.main`)."""
