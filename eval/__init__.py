"""Evaluation entry points: `python -m eval.speed`, and later scores and reports."""
