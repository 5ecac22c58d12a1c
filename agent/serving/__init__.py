"""deepsearch where people already work: an MCP server (`deepsearch mcp`) and runs under the LangGraph API server."""
