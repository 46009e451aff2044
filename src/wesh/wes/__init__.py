"""Cartelectronic WES server: typed model, data.cgx parser, CGX templates, client.

This package imports nothing of wesh but :mod:`wesh.errors` and :mod:`wesh.tic`.
"""

__all__: list[str] = []
