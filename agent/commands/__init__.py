"""CLI sub-commands, one module each; `agent/cli.py` registers them."""
