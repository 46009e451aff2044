"""Packing the sync agent's items into DATA messages that fit a packet.

Items waiting in the state file (closed hours, samples on the grid) become one
:class:`~wesh.sync.readings.ReadingBlock` per packet: a window of up to
``max_steps_per_packet`` grid steps and a *channel range*, as many channels as fit
``max_fragments`` texts::

    items (waiting) ──choose anchor──▶ window of steps ──fit channels──▶ DATA message
      latest first (newer than           (oldest first     (bytes per value of the
      latest_window_s), then backlog      for backlog)      last packet: 1-2 encodings)

Index values are written as deltas from the baselines HQ acknowledged, unless an item
must travel absolute (re-sent history, or a packet re-encoded after unanswered sends).
The agent seals, stores and sends what :meth:`DataPacker.draft` returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from wesh.sync._wire import Reader
from wesh.sync.agent_state import (
    HOUR_ITEM,
    HOUR_S,
    QUALITY_NAME,
    SAMPLE_ITEM,
    AgentState,
    from_s,
    to_s,
)
from wesh.sync.packet import OVERHEAD_BYTES, AnyMessage, DataMessage
from wesh.sync.readings import BaselineBook, Column, Quality, ReadingBlock, encode_block
from wesh.sync.schema import Schema

if TYPE_CHECKING:
    from wesh.sync.agent import AgentConfig

__all__ = ["DataPacker", "Draft", "base_back"]


def base_back(message: DataMessage) -> int:
    """Return the baseline distance written in a DATA block (0: absolute)."""
    reader = Reader(message.block, what="DATA block")
    reader.raw(5)
    reader.varint()
    reader.varint()
    return reader.varint()


# ----------------------------------------------------------------------------- the agent


@dataclass(slots=True)
class Draft:
    """A DATA packet being built: its message, items and whether it uses baselines."""

    message: AnyMessage
    item_ids: list[int]
    based: bool


class DataPacker:
    """Chooses the next waiting items and encodes them into a DATA message that fits.

    Args:
        config: the agent's configuration (grid, window, packet sizes).
        state: the agent's state file (its ``items`` table is read, never written).
        schema: returns the site's current schema.
        book: the baselines HQ acknowledged (index deltas are written from them).
    """

    def __init__(
        self,
        *,
        config: AgentConfig,
        state: AgentState,
        schema: Callable[[], Schema],
        book: BaselineBook,
    ) -> None:
        self.config = config
        self._state = state
        self._schema_of = schema
        self._book = book
        self._bytes_per_value: dict[int, float] = {}

    def draft(self, now: datetime, *, max_texts: int) -> Draft | None:
        """Choose the next items and encode them into a DATA message that fits."""
        recent_s = to_s(now) - math.ceil(self.config.latest_window_s)
        for latest in (True, False):
            for family in (HOUR_ITEM, SAMPLE_ITEM):
                if latest:
                    anchor = self._state.one(
                        "SELECT max(at_s) FROM items WHERE family = ? AND packet_seq IS NULL "
                        "AND at_s >= ?",
                        (family, recent_s),
                    )
                else:
                    anchor = self._state.one(
                        "SELECT min(at_s) FROM items WHERE family = ? AND packet_seq IS NULL",
                        (family,),
                    )
                if anchor is not None:
                    return self._fit(family, int(anchor), newest=latest, max_texts=max_texts)
        return None

    def _max_bytes(self, texts: int) -> int:
        """Most bytes of a DATA packet of at most ``texts`` texts."""
        config = self.config
        if config.max_chars is None:
            return config.packet_bytes
        whole = config.max_chars // 2
        frags = min(texts, config.max_fragments)
        return whole if frags <= 1 else max(whole, frags * (whole - 3))

    def _fit(self, family: int, anchor_s: int, *, newest: bool, max_texts: int) -> Draft:
        """Encode the items next to ``anchor_s`` into a DATA message that fits.

        A packet keeps every grid step of the window (consecutive values of a channel
        cost a few bits each) and takes as many channels as fit: a *channel range*. The
        first guess comes from the bytes per value of the last packet, so a packet
        usually costs one or two encodings.
        """
        step = HOUR_S if family == HOUR_ITEM else self.config.sample_grid_s
        steps = self.config.max_steps_per_packet
        limit = self._max_bytes(max_texts)
        lo = anchor_s - (steps - 1) * step if newest else anchor_s
        hi = anchor_s if newest else anchor_s + (steps - 1) * step
        by_channel: dict[int, list[tuple[int, int, int | float, int]]] = {}
        absolute = False
        for item_id, box, path, at_s, value, quality, item_absolute in self._state.rows(
            "SELECT id, box, path, at_s, value, quality, absolute FROM items "
            "WHERE family = ? AND packet_seq IS NULL AND at_s BETWEEN ? AND ?",
            (family, lo, hi),
        ):
            index = self._schema_of().index_of(str(box), str(path))
            if index is not None:  # always: channels are added before their items
                by_channel.setdefault(index, []).append((item_id, int(at_s), value, int(quality)))
                absolute = absolute or bool(item_absolute)
        channels = sorted(by_channel)
        count = len(channels)
        per_value = self._bytes_per_value.get(family)
        if per_value:
            budget = 0.9 * (limit - OVERHEAD_BYTES - 16) / per_value
            total = 0
            for n, channel in enumerate(channels, start=1):
                total += len(by_channel[channel])
                if total > budget:
                    count = max(1, n - 1)
                    break
        while True:
            chosen = channels[:count]
            draft = self._encode(family, step, chosen, by_channel, absolute=absolute)
            size = len(draft.message.encode()) + 1 + OVERHEAD_BYTES
            values = sum(len(by_channel[c]) for c in chosen)
            self._bytes_per_value[family] = max(0.05, (size - OVERHEAD_BYTES - 16) / values)
            if size <= limit:
                return draft
            if count > 1:
                count = max(1, min(count - 1, math.floor(count * 0.9 * limit / size)))
                continue
            # one channel is too large: fewer steps of it
            items = sorted(by_channel[chosen[0]], key=lambda item: item[1])
            if len(items) == 1:
                return draft  # one value always fits a packet
            keep = max(1, min(len(items) - 1, math.floor(len(items) * 0.9 * limit / size)))
            by_channel[chosen[0]] = items[-keep:] if newest else items[:keep]

    def _encode(
        self,
        family: int,
        step: int,
        chosen: Sequence[int],
        by_channel: dict[int, list[tuple[int, int, int | float, int]]],
        *,
        absolute: bool,
    ) -> Draft:
        times = [at for c in chosen for _, at, _, _ in by_channel[c]]
        start, end = min(times), max(times)
        count = (end - start) // step + 1
        columns = []
        ids: list[int] = []
        for index in chosen:
            values: list[int | float | None] = [None] * count
            qualities: list[Quality] = ["measured"] * count
            for item_id, at_s, value, quality in by_channel[index]:
                values[(at_s - start) // step] = value
                qualities[(at_s - start) // step] = QUALITY_NAME[quality]
                ids.append(item_id)
            columns.append(
                Column(
                    index,
                    tuple(values),
                    tuple(qualities) if any(q != "measured" for q in qualities) else (),
                )
            )
        block = ReadingBlock(
            from_s(start), step, count, tuple(columns), aggregated=family == HOUR_ITEM
        )
        message = encode_block(block, self._schema_of(), book=None if absolute else self._book)
        return Draft(message, ids, base_back(message) > 0)
