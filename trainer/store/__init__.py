"""The run store: the typed run record, its JSON files, and the CSV export (torch-free)."""
