"""cnn-tui's trainer side: configs, data, model, training loop, worker process, run store.

Nothing here imports Textual; only `data`, `model`, `loop` and the worker's child side import
torch, so the TUI can use the rest (configs, presets, events, store) and still open instantly.
"""

__version__ = "0.1.0"
