"""The run folder: its format, lock, status and attempts (docs/run-folder.md). Light: no torch."""
