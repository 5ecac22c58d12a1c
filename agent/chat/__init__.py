"""`deepsearch chat`: an interactive research session (store, live view, slash commands, the REPL)."""
