"""The headless command line: `cnn-tui run`, `cnn-tui presets`, `cnn-tui export`."""
