"""deepsearch.tools: web search, page fetch and extraction, local corpus index, reranker."""
