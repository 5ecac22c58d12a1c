"""deepsearch.traces: trajectory schema, recorder, readers and exporters."""
