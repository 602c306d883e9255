"""Synchronized data-parallel training on Ray Train (imports Ray)."""
