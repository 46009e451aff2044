"""Cartelectronic WES server: typed model, data.cgx parser, CGX templates, client.

This package imports nothing of wesh but :mod:`wesh.errors` and :mod:`wesh.tic`.
"""

from wesh.wes.cgx import (
    COMPACT_CODES,
    CgxLine,
    build_template,
    compact_stock_template,
    compact_template,
    format_c,
    parse_template,
    render_template,
    stock_template,
)
from wesh.wes.codes import CODES, LEGACY_CODES, CodeInfo, codes_for, match_code
from wesh.wes.datacgx import (
    parse_compact,
    parse_data_cgx,
    period_code,
    snapshot_values,
    tomorrow_code,
)
from wesh.wes.model import (
    Clamp,
    Firmware,
    PulseCounter,
    Quantity,
    TicMeter,
    WesInfo,
    WesSnapshot,
)
from wesh.wes.readings import Reading, normalise_quantity

__all__ = [
    "CODES",
    "COMPACT_CODES",
    "LEGACY_CODES",
    "CgxLine",
    "Clamp",
    "CodeInfo",
    "Firmware",
    "PulseCounter",
    "Quantity",
    "Reading",
    "TicMeter",
    "WesInfo",
    "WesSnapshot",
    "build_template",
    "codes_for",
    "compact_stock_template",
    "compact_template",
    "format_c",
    "match_code",
    "normalise_quantity",
    "parse_compact",
    "parse_data_cgx",
    "parse_template",
    "period_code",
    "render_template",
    "snapshot_values",
    "stock_template",
    "tomorrow_code",
]
