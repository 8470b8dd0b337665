"""Thin entry points: `python -m app.play` (pygame)."""
