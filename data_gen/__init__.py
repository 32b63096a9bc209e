"""Scans in, question-answer records out. Never imports torch (see DESIGN.md)."""
