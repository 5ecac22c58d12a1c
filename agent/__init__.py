"""deepsearch.agent: configuration, LLM access, the research graph and the CLI."""
