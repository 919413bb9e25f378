"""One module per ``queuescale`` subcommand: its flags (``add_*_parser``) and what it runs (``cmd_*``)."""
