"""One module per subcommand; each exposes ``command``. Discovered by ``bitwitness.cli.main``."""
