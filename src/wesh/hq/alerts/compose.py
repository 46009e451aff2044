"""Alert mails: a :class:`~wesh.hq.alerts.model.Notice` becomes a :class:`Mail`.

Pure functions, no I/O. A mail says **what** (the rule's human title and the severity),
**where** (agency, residence, building, dwelling, gateway, box, channel: whatever the
:class:`~wesh.hq.alerts.model.Place` knows), **since when** (Europe/Paris local time,
with the date), the **values** that triggered it (value, unit, threshold, details), the
subjects grouped under it (a dead gateway lists its boxes), its **state** (fired,
reminder *n*, escalated, resolved with its duration), who acknowledged it, and a link to
``{base_url}/alerts/{alert_id}``. French by default, English on request; plain text plus
an HTML alternative in which every inventory text is escaped.

A mail's identity is its **dedup key** (:func:`notice_dedup_key`)::

    f"{alert_id}:{notice_kind}:{sequence}:{lang}:{recipient digest}"

The outbox stores it UNIQUE (a second worker making the same notice inserts nothing) and
the ``Message-ID`` is derived from it, so a mail retried after a lost reply keeps its
identity and mail clients can drop a duplicate.

Inventory names come from files people type: control characters and line breaks are
folded into spaces (no header injection, no forged lines) and each name is capped.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, formatdate, parseaddr
from typing import Final

from wesh.errors import UsageError
from wesh.hq.alerts.mail_text import (
    DETAIL_LABELS,
    FALLBACK_TITLE,
    KIND_LABELS,
    LANGS,
    MONTHS,
    RULE_TITLES,
    SEVERITY_LABELS,
    TEXTS,
    Lang,
)
from wesh.hq.alerts.model import JsonScalar, Notice, Place
from wesh.hq.timeutil import paris_time, to_epoch_us

__all__ = [
    "MAX_SUBJECT_CHARS",
    "Mail",
    "compose_notice",
    "compose_test_mail",
    "message_id_for",
    "notice_dedup_key",
    "recipient_digest",
    "rule_title",
    "sender_domain_of",
    "standard_headers",
    "to_message",
]

MAX_SUBJECT_CHARS: Final = 200
#: Longest inventory text shown (names are capped, not refused).
_MAX_NAME_CHARS: Final = 120
#: Grouped subjects listed one by one; the rest are counted.
_MAX_GROUPED_LISTED: Final = 50
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_DOMAIN: Final = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


@dataclass(frozen=True, slots=True)
class Mail:
    """One mail, ready for the outbox or for SMTP (the sender is added when sending).

    Attributes:
        to: recipient addresses.
        subject: at most :data:`MAX_SUBJECT_CHARS` characters, one line.
        text: the plain-text body.
        html: the HTML alternative (every inventory text escaped).
        lang: ``"fr"`` or ``"en"``.
        message_id: ``<...@domain>``, stable for one notice and recipient set.
        headers: further headers (``Date``, ``Auto-Submitted``, ``X-Wesh-*``).
        dedup_key: the outbox key of an alert notice (``None`` for a test mail).
    """

    to: tuple[str, ...]
    subject: str
    text: str
    html: str
    lang: str
    message_id: str
    headers: Mapping[str, str] = field(default_factory=dict)
    dedup_key: str | None = None


# --- identity ---------------------------------------------------------------------------


def recipient_digest(to: Iterable[str]) -> str:
    """Return 16 hex digits naming a recipient set (order and case do not matter)."""
    addresses = sorted({address.strip().lower() for address in to})
    return hashlib.sha256("\n".join(addresses).encode()).hexdigest()[:16]


def notice_dedup_key(notice: Notice, *, to: Sequence[str], lang: str) -> str:
    """Return the outbox dedup key of ``notice`` for these recipients in ``lang``.

    ``f"{alert_id}:{kind}:{sequence}:{lang}:{recipient digest}"``, at most 64 characters.
    """
    return f"{notice.alert_id}:{notice.kind}:{notice.sequence}:{_lang(lang)}:{recipient_digest(to)}"


def message_id_for(key: str, sender_domain: str) -> str:
    """Return the ``Message-ID`` derived from a dedup key (or any ``[0-9a-z:.-]`` key)."""
    local = re.sub(r"[^0-9A-Za-z.-]", ".", key)
    return f"<wesh.{local}@{_domain(sender_domain)}>"


def standard_headers(
    *, date: datetime, lang: str, alert_id: int | None = None, notice_kind: str | None = None
) -> dict[str, str]:
    """Return the headers every wesh mail carries (also rebuilt by the outbox when sending).

    ``Date`` (RFC 5322, UTC), ``Auto-Submitted: auto-generated`` (RFC 3834: no
    auto-replies), ``Content-Language``, and ``X-Wesh-Alert`` / ``X-Wesh-Notice`` for
    alert notices.
    """
    headers = {
        "Date": format_datetime(paris_time(date)),
        "Auto-Submitted": "auto-generated",
        "Content-Language": _lang(lang),
    }
    if alert_id is not None:
        headers["X-Wesh-Alert"] = str(alert_id)
    if notice_kind is not None:
        headers["X-Wesh-Notice"] = notice_kind
    return headers


_POLICY: Final = email_policy.SMTP.clone(max_line_length=998)


def to_message(mail: Mail, *, sender: str, date: datetime | None = None) -> EmailMessage:
    """Return ``mail`` as a MIME message: multipart/alternative, text then HTML.

    ``Date`` comes from ``mail.headers``, else from ``date``, else the current time.

    Raises:
        UsageError: a header value the email package refuses (a line break in it).
    """
    # Headers are not folded at 78 columns: CPython's folding splits "débit — Résidence"
    # into two encoded words across lines, and readers then drop the space between them.
    # A subject is at most MAX_SUBJECT_CHARS, far below SMTP's 998-octet line limit.
    message = EmailMessage(policy=_POLICY)
    # set_content() drops Content-* headers: the body first, then the headers.
    message.set_content(mail.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(mail.html, subtype="html", charset="utf-8", cte="quoted-printable")
    try:
        message["From"] = sender
        message["To"] = ", ".join(mail.to)
        message["Subject"] = mail.subject
        message["Message-ID"] = mail.message_id
        for name, value in mail.headers.items():
            message[name] = value
        if "Date" not in mail.headers:
            message["Date"] = format_datetime(date) if date is not None else formatdate(usegmt=True)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"cannot build the mail {mail.message_id}: {exc}") from exc
    return message


def sender_domain_of(sender: str) -> str:
    """Return the domain of a sender address (``"Wesh <wesh@example.org>"`` → ``example.org``)."""
    address = parseaddr(sender)[1]
    if "@" not in address:
        return "localhost"
    domain = address.rpartition("@")[2]
    return domain if domain and _DOMAIN.match(domain) else "localhost"


# --- formatting -------------------------------------------------------------------------


def _lang(lang: str) -> Lang:
    for known in LANGS:
        if lang == known:
            return known
    raise UsageError(f"unknown mail language {lang!r} (one of {', '.join(LANGS)})")


def _domain(domain: str) -> str:
    domain = domain.strip().strip("<>@")
    if not _DOMAIN.match(domain):
        raise UsageError(f"not a mail domain: {domain!r}")
    return domain


def _clean(value: object) -> str:
    """Fold control characters and runs of spaces; cap the length."""
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    if len(text) > _MAX_NAME_CHARS:
        text = text[: _MAX_NAME_CHARS - 1] + "…"
    return text


def rule_title(rule: str, lang: str) -> str:
    """Return the human title of a rule in ``lang`` (a generic one for unknown rules)."""
    code = _lang(lang)
    titles = RULE_TITLES.get(rule)
    if titles is not None:
        return titles[code]
    return FALLBACK_TITLE[code].format(rule=_clean(rule))


def _number(value: float, lang: Lang) -> str:
    if not math.isfinite(value):
        return str(value)
    rounded = round(value, 2)
    if rounded == int(rounded) and abs(rounded) < 1e15:
        text = f"{int(rounded):,}"
    else:
        text = f"{rounded:,.2f}".rstrip("0").rstrip(".")
    if lang == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    return text


def _quantity(value: float | None, unit: str | None, lang: Lang) -> str | None:
    if value is None:
        return None
    number = _number(value, lang)
    return f"{number} {_clean(unit)}" if unit else number


def _when(at: datetime, lang: Lang) -> str:
    local = paris_time(at)
    return TEXTS[lang]["when"].format(
        day=local.day,
        month=MONTHS[lang][local.month - 1],
        year=local.year,
        hour=local.hour,
        minute=local.minute,
    )


def _duration(seconds: float, lang: Lang) -> str:
    minutes = max(0, int(seconds // 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    texts = TEXTS[lang]
    if days:
        return texts["days_hours"].format(d=days, h=hours)
    if hours:
        return texts["hours_minutes"].format(h=hours, m=mins)
    return texts["minutes"].format(m=mins)


def _detail_value(key: str, value: JsonScalar, lang: Lang) -> str:
    if isinstance(value, bool):
        return {"fr": ("non", "oui"), "en": ("no", "yes")}[lang][value]
    if isinstance(value, int | float):
        return _number(float(value), lang)
    if value is None:
        return "—"
    if key.endswith("_at"):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if at.tzinfo is not None:
                return _when(at, lang)
    return _clean(value)


def _named(name: str, code: str) -> str:
    name, code = _clean(name), _clean(code)
    return name if not code or code == name else f"{name} ({code})"


def _where_rows(place: Place, lang: Lang) -> list[tuple[str, str]]:
    texts = TEXTS[lang]
    rows = [
        (texts["agency"], _named(place.agency_name, place.agency_code)),
        (texts["residence"], _named(place.residence_name, place.residence_code)),
        (texts["building"], _named(place.building_name, place.building_code)),
    ]
    if place.dwelling_code is not None or place.dwelling_label is not None:
        rows.append(
            (texts["dwelling"], _named(place.dwelling_label or "", place.dwelling_code or ""))
        )
    if place.site_id is not None:
        rows.append((texts["site"], _clean(place.site_id)))
    if place.box_ref is not None:
        rows.append((texts["box"], _clean(place.box_ref)))
    channel = _channel_text(place, lang)
    if channel is not None:
        rows.append((texts["channel"], channel))
    return rows


def _channel_text(place: Place, lang: Lang) -> str | None:
    if place.channel_path is None and place.channel_label is None:
        return None
    parts = [_clean(place.channel_label or place.channel_path or "")]
    if place.channel_kind is not None:
        kind = KIND_LABELS.get(place.channel_kind, {}).get(lang, _clean(place.channel_kind))
        parts.append(f"({kind})")
    if place.channel_label and place.channel_path and place.channel_path != place.channel_label:
        parts.append(f"— {_clean(place.channel_path)}")
    return " ".join(parts)


def _short_where(place: Place, lang: Lang) -> str:
    """One line for a subject or a grouped item: residence, building, dwelling or box."""
    texts = TEXTS[lang]
    parts = [
        _clean(place.residence_name),
        texts["subject_building"].format(code=_clean(place.building_code)),
    ]
    if place.dwelling_code is not None:
        parts.append(texts["subject_dwelling"].format(code=_clean(place.dwelling_code)))
    elif place.box_ref is not None:
        parts.append(texts["subject_box"].format(ref=_clean(place.box_ref)))
    elif place.site_id is not None:
        parts.append(texts["subject_site"].format(site=_clean(place.site_id)))
    return ", ".join(parts)


def _grouped_line(place: Place, lang: Lang) -> str:
    texts = TEXTS[lang]
    parts: list[str] = []
    if place.box_ref is not None:
        parts.append(texts["subject_box"].format(ref=_clean(place.box_ref)))
    if place.dwelling_code is not None:
        parts.append(texts["subject_dwelling"].format(code=_clean(place.dwelling_code)))
    channel = _channel_text(place, lang)
    if channel is not None:
        parts.append(channel)
    if not parts:
        return _short_where(place, lang)
    return f"{texts['subject_building'].format(code=_clean(place.building_code))}, " + ", ".join(
        parts
    )


def _subject(template: str, *, title: str, where: str, n: int) -> str:
    subject = template.format(title=title, where=where, n=n)
    if len(subject) <= MAX_SUBJECT_CHARS:
        return subject
    without = template.format(title=title, where="", n=n)
    room = MAX_SUBJECT_CHARS - len(without) - 1
    if room >= 10:
        return template.format(title=title, where=where[:room] + "…", n=n)
    return subject[: MAX_SUBJECT_CHARS - 1] + "…"


# --- the document: one structure, two renderings ----------------------------------------


@dataclass(slots=True)
class _Document:
    heading: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    items_title: str | None = None
    items: list[str] = field(default_factory=list)
    link: tuple[str, str] | None = None
    footer: str = ""


def _render_text(doc: _Document, lang: Lang) -> str:
    colon = " :" if lang == "fr" else ":"  # French typography: a space before the colon
    lines = [doc.heading, "=" * min(len(doc.heading), 72), ""]
    for paragraph in doc.paragraphs:
        lines += [paragraph, ""]
    for title, rows in doc.tables:
        if not rows:
            continue
        lines.append(f"{title}{colon}")
        width = max(len(label) for label, _ in rows)
        lines += [f"  {label.ljust(width)}  {value}" for label, value in rows]
        lines.append("")
    if doc.items_title is not None:
        lines.append(doc.items_title)
        lines += [f"  - {item}" for item in doc.items]
        lines.append("")
    if doc.link is not None:
        lines += [f"{doc.link[0]}{colon} {doc.link[1]}", ""]
    lines += ["-- ", doc.footer, ""]
    return "\n".join(lines)


def _render_html(doc: _Document, lang: Lang) -> str:
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}"><head><meta charset="utf-8"><title>{esc(doc.heading)}</title></head>',
        '<body style="font-family: sans-serif; color: #222;">',
        f'<h1 style="font-size: 1.3em;">{esc(doc.heading)}</h1>',
    ]
    out += [f"<p>{esc(paragraph)}</p>" for paragraph in doc.paragraphs]
    for title, rows in doc.tables:
        if not rows:
            continue
        out.append(f'<h2 style="font-size: 1.1em;">{esc(title)}</h2>')
        out.append('<table style="border-collapse: collapse;">')
        out += [
            f'<tr><th style="text-align: left; padding: 2px 12px 2px 0;">{esc(label)}</th>'
            f"<td>{esc(value)}</td></tr>"
            for label, value in rows
        ]
        out.append("</table>")
    if doc.items_title is not None:
        out.append(f"<p>{esc(doc.items_title)}</p><ul>")
        out += [f"<li>{esc(item)}</li>" for item in doc.items]
        out.append("</ul>")
    if doc.link is not None:
        label, url = doc.link
        out.append(f'<p><a href="{esc(url, quote=True)}">{esc(label)}</a></p>')
    out.append(f'<p style="color: #777; font-size: 0.9em;">{esc(doc.footer)}</p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --- notices ----------------------------------------------------------------------------


def _state_text(notice: Notice, lang: Lang, now: datetime) -> str:
    texts = TEXTS[lang]
    fired = _when(notice.fired_at or notice.started_at, lang)
    if notice.kind == "reminder":
        return texts["state_reminder"].format(n=notice.sequence, fired=fired)
    if notice.kind == "escalated":
        return texts["state_escalated"].format(fired=fired)
    if notice.kind == "resolved":
        resolved_at = notice.resolved_at or now
        began = notice.fired_at or notice.started_at
        return texts["state_resolved"].format(
            resolved=_when(resolved_at, lang),
            duration=_duration((resolved_at - began).total_seconds(), lang),
        )
    return texts["state_fired"].format(fired=fired)


def _value_rows(notice: Notice, lang: Lang) -> list[tuple[str, str]]:
    texts = TEXTS[lang]
    rows: list[tuple[str, str]] = []
    value = _quantity(notice.value, notice.unit, lang)
    if value is not None:
        label = texts["last_value"] if notice.kind == "resolved" else texts["value"]
        rows.append((label, value))
    threshold = _quantity(notice.threshold, notice.unit, lang)
    if threshold is not None:
        rows.append((texts["threshold"], threshold))
    for key in sorted(notice.details):
        labels = DETAIL_LABELS.get(key)
        label = labels[lang] if labels is not None else _clean(key)
        rows.append((label, _detail_value(key, notice.details[key], lang)))
    return rows


def _event_time(notice: Notice) -> datetime:
    if notice.kind == "resolved" and notice.resolved_at is not None:
        return notice.resolved_at
    return notice.fired_at or notice.started_at


def compose_notice(
    notice: Notice,
    *,
    to: Sequence[str],
    lang: str,
    base_url: str,
    sender_domain: str,
    now: datetime | None = None,
) -> Mail:
    """Return the mail telling ``to`` about ``notice`` in ``lang`` (``"fr"`` or ``"en"``).

    Args:
        notice: what to tell.
        to: recipient addresses (at least one).
        lang: the language of the mail.
        base_url: the web app's root; the mail links ``{base_url}/alerts/{alert_id}``.
        sender_domain: the domain of the ``Message-ID``.
        now: the ``Date`` header (default: the notice's own event time, so that a
            notice composed twice gives the same mail).

    Raises:
        UsageError: no recipient, unknown language, bad domain, naive datetimes.
    """
    code = _lang(lang)
    recipients = tuple(address.strip() for address in to if address.strip())
    if not recipients:
        raise UsageError(f"alert {notice.alert_id}: a mail needs at least one recipient")
    texts = TEXTS[code]
    date = now or _event_time(notice)
    title = rule_title(notice.rule, code)
    where = _short_where(notice.place, code)
    template = texts[f"subject_{notice.kind}"]
    subject = _subject(template, title=title, where=where, n=notice.sequence)

    severity = SEVERITY_LABELS.get(notice.severity, {}).get(code, _clean(notice.severity))
    what_rows = [
        (texts["what"], title),
        (texts["severity"], severity),
        (texts["since"], _when(notice.started_at, code)),
    ]
    if notice.fired_at is not None:
        what_rows.append((texts["fired_at"], _when(notice.fired_at, code)))
    paragraphs = [_state_text(notice, code, date)]
    if notice.acked_by is not None:
        paragraphs.append(
            texts["acked"].format(
                who=_clean(notice.acked_by),
                when=_when(notice.acked_at or date, code),
            )
        )
    elif notice.kind in ("reminder", "escalated"):
        paragraphs.append(texts["not_acked"])
    doc = _Document(
        heading=title,
        paragraphs=paragraphs,
        tables=[
            (texts["alert"], what_rows),
            (texts["where"], _where_rows(notice.place, code)),
            (texts["values"], _value_rows(notice, code)),
        ],
        link=(texts["link"], f"{base_url.rstrip('/')}/alerts/{notice.alert_id}"),
        footer=texts["footer"],
    )
    if notice.grouped:
        listed = notice.grouped[:_MAX_GROUPED_LISTED]
        doc.items_title = texts["grouped"].format(n=len(notice.grouped))
        doc.items = [_grouped_line(place, code) for place in listed]
        if len(notice.grouped) > len(listed):
            doc.items.append(texts["grouped_more"].format(n=len(notice.grouped) - len(listed)))
    key = notice_dedup_key(notice, to=recipients, lang=code)
    return Mail(
        to=recipients,
        subject=subject,
        text=_render_text(doc, code),
        html=_render_html(doc, code),
        lang=code,
        message_id=message_id_for(key, sender_domain),
        headers=standard_headers(
            date=date, lang=code, alert_id=notice.alert_id, notice_kind=notice.kind
        ),
        dedup_key=key,
    )


def compose_test_mail(*, to: Sequence[str], lang: str, sender_domain: str, now: datetime) -> Mail:
    """Return a test mail (``wesh hq alerts test-mail``): checks SMTP settings end to end.

    Raises:
        UsageError: no recipient, unknown language, bad domain, naive ``now``.
    """
    code = _lang(lang)
    recipients = tuple(address.strip() for address in to if address.strip())
    if not recipients:
        raise UsageError("a test mail needs at least one recipient")
    texts = TEXTS[code]
    doc = _Document(
        heading=texts["test_heading"],
        paragraphs=[texts["test_intro"], texts["test_sent"].format(when=_when(now, code))],
        footer=texts["footer"],
    )
    key = f"test.{to_epoch_us(now)}.{recipient_digest(recipients)}"
    return Mail(
        to=recipients,
        subject=texts["subject_test"],
        text=_render_text(doc, code),
        html=_render_html(doc, code),
        lang=code,
        message_id=message_id_for(key, sender_domain),
        headers=standard_headers(date=now, lang=code),
    )
