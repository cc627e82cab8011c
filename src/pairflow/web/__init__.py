"""Starlette: turns HTTP into calls on ``pairflow.oauth`` and back, and serves the browser pages."""
