"""Who gets an alert's mails: contacts by patrimony scope, plus an escalation contact.

Contacts come from the configuration (``[[contacts]]`` of ``AlertsConfig``), each with a
scope: ``"*"`` (everything), ``agency:CODE``, ``residence:CODE``, ``building:CODE`` or
``dwelling:CODE``. A subject's recipients are the contacts whose scope contains its
:class:`~wesh.hq.alerts.model.Place`, the most specific first (dwelling, building,
residence, agency, then ``"*"``, which always applies), each address once (the first,
most specific, contact wins: its name and language are kept). Escalation contacts
(``escalation = true``) get only the ``escalated`` mails.

Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from wesh.hq.alerts.mail_text import Lang
from wesh.hq.alerts.model import Place

__all__ = ["SCOPE_ORDER", "Recipient", "by_language", "recipients_for", "scope_rank"]

#: Scope kinds from the most specific to the least (``*`` last).
SCOPE_ORDER: Final = ("dwelling", "building", "residence", "agency", "*")


class _Contact(Protocol):
    @property
    def scope(self) -> str: ...
    @property
    def emails(self) -> list[str]: ...
    @property
    def name(self) -> str | None: ...
    @property
    def lang(self) -> Lang | None: ...
    @property
    def escalation(self) -> bool: ...


class _Config(Protocol):
    @property
    def lang(self) -> Lang: ...
    @property
    def contacts(self) -> Sequence[_Contact]: ...


@dataclass(frozen=True, slots=True)
class Recipient:
    """One address to mail, with the name and language of the contact that named it."""

    email: str
    name: str | None
    lang: Lang


def scope_rank(scope: str, place: Place) -> int | None:
    """Return how specific ``scope`` is for ``place`` (0 = dwelling ... 4 = ``*``).

    ``None`` when the scope does not contain the place (or is not understood).
    """
    if scope.strip() == "*":
        return SCOPE_ORDER.index("*")
    kind, _, code = scope.partition(":")
    codes = {
        "dwelling": place.dwelling_code,
        "building": place.building_code,
        "residence": place.residence_code,
        "agency": place.agency_code,
    }
    if kind not in codes or not code or codes[kind] is None or codes[kind] != code:
        return None
    return SCOPE_ORDER.index(kind)


def recipients_for(config: _Config, place: Place, *, escalation: bool = False) -> list[Recipient]:
    """Return who to mail about a subject at ``place``, most specific scopes first.

    Args:
        config: the alert configuration (its ``contacts`` and default ``lang``).
        place: where the subject is.
        escalation: the escalation contacts instead of the usual ones.
    """
    ranked: list[tuple[int, int, _Contact]] = []
    for order, contact in enumerate(config.contacts):
        if contact.escalation != escalation:
            continue
        rank = scope_rank(contact.scope, place)
        if rank is not None:
            ranked.append((rank, order, contact))
    ranked.sort(key=lambda item: (item[0], item[1]))
    seen: set[str] = set()
    found: list[Recipient] = []
    for _, _, contact in ranked:
        for email in contact.emails:
            key = email.strip().lower()
            if not key or key in seen:
                continue
            seen.add(key)
            found.append(Recipient(email.strip(), contact.name, contact.lang or config.lang))
    return found


def by_language(recipients: Iterable[Recipient]) -> dict[Lang, tuple[str, ...]]:
    """Split recipients by language (one mail per language), keeping their order."""
    split: dict[Lang, list[str]] = {}
    for recipient in recipients:
        split.setdefault(recipient.lang, []).append(recipient.email)
    return {lang: tuple(emails) for lang, emails in split.items()}
