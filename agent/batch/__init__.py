"""`deepsearch batch`: read questions, answer them concurrently, append one output row per question."""
