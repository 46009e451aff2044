"""Enedis Téléinfo (TIC): decoder, label catalogue, encoder and serial reader.

This package imports nothing else of wesh but :mod:`wesh.errors`.
"""

from wesh.tic.encoder import checksum, encode_frame, encode_group, make_group
from wesh.tic.model import Frame, Group, Mode

__all__ = [
    "Frame",
    "Group",
    "Mode",
    "checksum",
    "encode_frame",
    "encode_group",
    "make_group",
]
