"""Small subcommands of the verirl CLI."""
