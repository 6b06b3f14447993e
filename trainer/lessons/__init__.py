"""Lessons: preset files, launch planning, statistics over repeats and verdicts (torch-free)."""
