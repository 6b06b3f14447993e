"""The parent side: the trainer process handle and the run-session model its clients share."""
