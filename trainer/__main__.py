"""`python -m trainer …` — the same command line as `cnn-tui` (headless commands)."""

from trainer.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
