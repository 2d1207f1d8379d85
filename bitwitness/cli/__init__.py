"""The command line: click for parsing, rich for output. Nothing below this package prints."""
