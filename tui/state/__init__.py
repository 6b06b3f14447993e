"""Plain view state of the TUI (no Textual): toggles, the runs view, chart and table models."""
