"""The graph's nodes, one module each, named as in DESIGN.md's diagram."""
