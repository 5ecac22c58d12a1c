"""Research reports: an outline from the sub-goal DAG, each section written and verified from its own
evidence, then assembled into Markdown (or HTML) with a checked sources list (see docs/reports.md)."""
