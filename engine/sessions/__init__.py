"""Accounts, the sans-I/O 1:1 core of an installation, its store records, and the engine committing each step."""
