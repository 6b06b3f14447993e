"""cnn-tui's non-UI side: the engine (torch), the host process handle and session, lessons,
the run store and the headless CLI; see the README's "How it is built" for the map.

Nothing here imports Textual; only `trainer.engine` imports torch, and only in the spawned
worker process, so the TUI and the CLI open instantly.
"""

__version__ = "0.1.0"
