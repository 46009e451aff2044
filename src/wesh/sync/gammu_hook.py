"""gammu-smsd's ``RunOnReceive`` hook: one received SMS message → one spool file.

gammu-smsd runs, for every received message (once per message; once for all the parts of
a multipart message, when they are all there or when ``MultipartTimeout`` gave up
waiting)::

    <runonreceive command> IN<date>_<time>_<serial>_<sender>_00.txt [… _01.txt …]

with the message in its environment: ``SMS_MESSAGES`` (parts), ``SMS_<n>_NUMBER``,
``SMS_<n>_TEXT`` (each part), ``DECODED_PARTS`` and ``DECODED_<n>_TEXT`` (the parts
joined). Configure it as::

    runonreceive = /path/to/python -m wesh.sync.gammu_hook /var/spool/wesh/sms-in

Why a hook and not a watch on smsd's inbox: smsd creates inbox files *before* it writes
them (gammu.md pitfall 9: 1 read in 10 saw a partial file), and a multipart message is
several files with no marker of completeness. ``RunOnReceive`` is called after every part
is saved, and hands over the whole text at once. The hook writes one JSON record to a
dot-file in the spool directory, syncs it, and renames it to its final ``.json`` name:
the receiver (:class:`wesh.sync.gammu.GammuTransport`) only reads ``*.json`` names, so it
never sees a half-written record. The hook needs the standard library only, never reads
smsd's files, and exits non-zero (smsd logs "Process failed") if it cannot write; smsd
keeps its inbox file in that case, for an operator to replay.

Spool record (UTF-8 JSON object)::

    {"format": "wesh-gammu-hook/1",
     "received_at": "2024-05-01T12:00:00.123456+00:00",   # when the hook ran (UTC)
     "number": "+33612345678",                             # SMS_1_NUMBER ("" if none)
     "parts": 3,                                           # SMS_MESSAGES: parts that came
     "text": "…",                                          # decoded text, else parts joined
     "part_texts": ["…", "…", "…"],                        # SMS_<n>_TEXT (null: no text)
     "files": ["IN…_00.txt", "IN…_01.txt", "IN…_02.txt"]}  # smsd's inbox file names
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from wesh.errors import DecodeError

__all__ = [
    "FORMAT",
    "SpoolRecord",
    "build_record",
    "main",
    "parse_record",
    "record_bytes",
    "write_record",
]

FORMAT = "wesh-gammu-hook/1"
_T = TypeVar("_T")
_MAX_PARTS = 255  # a concatenated SMS counts its parts in one byte


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One received message as the hook saw it.

    Attributes:
        received_at: when the hook ran (aware, UTC).
        number: the sender as smsd gives it (``""`` if smsd gave none).
        parts: how many SMS parts came (fewer than sent when a part was lost).
        text: the decoded text, or the parts' texts joined.
        part_texts: each part's text (``None`` for a part without text: 8-bit data).
        files: smsd's inbox file names of the parts.
    """

    received_at: datetime
    number: str
    parts: int
    text: str
    part_texts: tuple[str | None, ...]
    files: tuple[str, ...]


def _int(env: Mapping[str, str], key: str) -> int:
    try:
        return max(0, min(_MAX_PARTS, int(env.get(key, "0"))))
    except ValueError:
        return 0


def build_record(env: Mapping[str, str], files: Sequence[str], *, now: datetime) -> SpoolRecord:
    """Read the message that smsd describes in ``env`` (pure)."""
    parts = _int(env, "SMS_MESSAGES")
    part_texts = tuple(env.get(f"SMS_{n}_TEXT") for n in range(1, parts + 1))
    decoded = [env.get(f"DECODED_{n}_TEXT") for n in range(1, _int(env, "DECODED_PARTS") + 1)]
    decoded_texts = [text for text in decoded if text is not None]
    text = "".join(decoded_texts) if decoded_texts else "".join(t or "" for t in part_texts)
    return SpoolRecord(
        received_at=now.astimezone(UTC),
        number=env.get("SMS_1_NUMBER", ""),
        parts=parts,
        text=text,
        part_texts=part_texts,
        files=tuple(name for name in files if name),
    )


def record_bytes(record: SpoolRecord) -> bytes:
    """Serialise ``record`` as the spool's JSON."""
    data = {
        "format": FORMAT,
        "received_at": record.received_at.isoformat(),
        "number": record.number,
        "parts": record.parts,
        "text": record.text,
        "part_texts": list(record.part_texts),
        "files": list(record.files),
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def parse_record(data: bytes, *, where: str = "spool record") -> SpoolRecord:
    """Read a spool file.

    Raises:
        DecodeError: not UTF-8 JSON of this format, or a field is missing or wrong.
    """
    try:
        obj = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise DecodeError(f"not UTF-8 JSON: {exc}", where=where) from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise DecodeError(f"not a {FORMAT} record", where=where)
    try:
        received_at = datetime.fromisoformat(_field(obj, "received_at", str, where))
    except ValueError as exc:
        raise DecodeError(f"bad received_at: {exc}", where=where) from exc
    if received_at.tzinfo is None:
        raise DecodeError("received_at has no time zone", where=where)
    part_texts = _field(obj, "part_texts", list, where)
    files = _field(obj, "files", list, where)
    if not all(t is None or isinstance(t, str) for t in part_texts):
        raise DecodeError("part_texts must hold strings or nulls", where=where)
    if not all(isinstance(f, str) for f in files):
        raise DecodeError("files must hold strings", where=where)
    parts = _field(obj, "parts", int, where)
    if isinstance(parts, bool) or parts < 0:
        raise DecodeError("parts must be a count", where=where)
    return SpoolRecord(
        received_at=received_at.astimezone(UTC),
        number=_field(obj, "number", str, where),
        parts=parts,
        text=_field(obj, "text", str, where),
        part_texts=tuple(part_texts),
        files=tuple(files),
    )


def _field(obj: Mapping[str, object], key: str, kind: type[_T], where: str) -> _T:
    value = obj.get(key)
    if not isinstance(value, kind):
        raise DecodeError(f"{key} must be a {kind.__name__}", where=where)
    return value


def write_record(spool: Path, record: SpoolRecord) -> Path:
    """Write ``record`` into ``spool`` atomically (dot-file, fsync, rename); return its path.

    Names sort by arrival: ``<UTC time>-<pid>-<random>.json``.
    """
    spool.mkdir(parents=True, exist_ok=True)
    stamp = record.received_at.strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{stamp}-{os.getpid()}-{secrets.token_hex(4)}.json"
    temporary = spool / f".{name}.tmp"
    final = spool / name
    try:
        with temporary.open("xb") as handle:
            handle.write(record_bytes(record))
            handle.flush()
            os.fsync(handle.fileno())
        temporary.rename(final)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    directory = os.open(spool, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return final


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the hook: ``python -m wesh.sync.gammu_hook SPOOL_DIR [INBOX_FILE …]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write("usage: python -m wesh.sync.gammu_hook SPOOL_DIR [INBOX_FILE ...]\n")
        return 2
    record = build_record(os.environ if env is None else env, args[1:], now=datetime.now(UTC))
    try:
        write_record(Path(args[0]), record)
    except OSError as exc:
        sys.stderr.write(f"wesh gammu hook: cannot write to spool {args[0]}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
