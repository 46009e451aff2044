"""Alert mails: what, where, since when, values, state; French and English; escaping."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wesh.errors import UsageError
from wesh.hq.alerts.compose import (
    MAX_SUBJECT_CHARS,
    compose_notice,
    compose_test_mail,
    notice_dedup_key,
    rule_title,
    sender_domain_of,
    to_message,
)
from wesh.hq.alerts.mail_text import (
    DETAIL_LABELS,
    FALLBACK_TITLE,
    KIND_LABELS,
    RULE_TITLES,
    SEVERITY_LABELS,
    TEXTS,
)
from wesh.hq.alerts.model import NOTICE_KINDS, RULES, Notice, Place, Subject
from wesh.hq.models import CHANNEL_KINDS

BASE = "https://hq.example.org/"
DOMAIN = "example.org"
# 2026-01-15 23:00 UTC is 16 January 00:00 in Paris (winter, UTC+1).
STARTED = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)
FIRED = datetime(2026, 1, 16, 2, 0, tzinfo=UTC)

DWELLING = Place(
    agency_id=1,
    agency_code="AG-NORD",
    agency_name="Agence Nord",
    residence_id=2,
    residence_code="RES-TIL",
    residence_name="Résidence Les Tilleuls",
    building_id=3,
    building_code="B1",
    building_name="Bâtiment B",
    dwelling_id=12,
    dwelling_code="12",
    dwelling_label="Logement 12",
    site_id="site-b1",
    box_ref="wes-12",
    channel_path="temp.1",
    channel_kind="temperature",
    channel_label="Séjour",
)
GATEWAY = Place(
    agency_id=1,
    agency_code="AG-NORD",
    agency_name="Agence Nord",
    residence_id=2,
    residence_code="RES-TIL",
    residence_name="Résidence Les Tilleuls",
    building_id=3,
    building_code="B1",
    building_name="Bâtiment B",
    site_id="site-b1",
)


def _notice(**fields: object) -> Notice:
    values: dict[str, object] = {
        "kind": "fired",
        "alert_id": 42,
        "rule": "frost",
        "subject": Subject("channel", 7),
        "place": DWELLING,
        "severity": "critical",
        "started_at": STARTED,
        "fired_at": FIRED,
        "value": 10.5,
        "unit": "°C",
        "threshold": 12.0,
    }
    values.update(fields)
    return Notice(**values)  # type: ignore[arg-type]


def _words(text: str) -> set[str]:
    return {word.lower() for word in re.findall(r"[A-Za-zÀ-ÿ']+", text)}


# --- titles and texts ---------------------------------------------------------------------


@pytest.mark.parametrize("rule", [rule for family in RULES.values() for rule in family])
def test_every_rule_has_a_french_and_an_english_title(rule: str) -> None:
    assert set(RULE_TITLES[rule]) == {"fr", "en"}
    french, english = rule_title(rule, "fr"), rule_title(rule, "en")
    assert french and english and french != english
    assert rule not in french and rule not in english  # a human title, not the code


def test_no_title_for_a_rule_that_does_not_exist() -> None:
    known = {rule for family in RULES.values() for rule in family}
    assert set(RULE_TITLES) == known
    assert rule_title("new_rule", "fr") == FALLBACK_TITLE["fr"].format(rule="new_rule")


def test_both_languages_have_the_same_texts() -> None:
    assert set(TEXTS["fr"]) == set(TEXTS["en"])
    for table in (DETAIL_LABELS, KIND_LABELS, SEVERITY_LABELS):
        for labels in table.values():
            assert set(labels) == {"fr", "en"}
    assert set(KIND_LABELS) == set(CHANNEL_KINDS)


ENGLISH = {
    "the", "and", "since", "value", "values", "threshold", "building", "dwelling", "alert",
    "resolved", "reminder", "escalated", "acknowledged", "by", "from", "to", "of", "at", "on",
    "is", "was", "has", "been", "severity", "warning", "critical", "channel", "box", "gateway",
    "link", "see", "after", "back", "new", "fired", "nobody", "please", "do", "not", "reply",
    "times", "time", "water", "leak", "flow", "night", "high", "low", "meter",
    "sent", "agency", "residence", "where", "what", "last", "more", "items",
}  # fmt: skip


def test_no_english_words_in_the_french_fixed_texts() -> None:
    fixed = [*TEXTS["fr"].values()]
    for table in (RULE_TITLES, DETAIL_LABELS, KIND_LABELS, SEVERITY_LABELS):
        fixed += [labels["fr"] for labels in table.values()]
    fixed.append(FALLBACK_TITLE["fr"])
    fixed = [re.sub(r"\{[^}]*\}", "", text) for text in fixed]  # not the {fields}
    found = {word for text in fixed for word in _words(text) & ENGLISH}
    assert not found, found


@pytest.mark.parametrize("kind", NOTICE_KINDS)
@pytest.mark.parametrize("rule", [rule for family in RULES.values() for rule in family])
def test_french_mails_of_every_rule_and_notice_speak_french(rule: str, kind: str) -> None:
    # Inventory texts made of codes, so that every word left is a fixed text.
    place = Place(
        1,
        "A1",
        "A1",
        2,
        "R1",
        "R1",
        3,
        "B1",
        "B1",
        4,
        "L1",
        "L1",
        "S1",
        "X1",
        "P1",
        "temperature",
        "P1",
    )
    notice = _notice(
        rule=rule,
        kind=kind,
        place=place,
        sequence=2 if kind == "reminder" else 0,
        resolved_at=FIRED + timedelta(hours=5) if kind == "resolved" else None,
        acked_by="M1" if kind == "resolved" else None,
        acked_at=FIRED + timedelta(hours=1) if kind == "resolved" else None,
        details={"nights": 3},
        grouped=(place,),
    )
    mail = compose_notice(
        notice, to=["a@example.org"], lang="fr", base_url=BASE, sender_domain=DOMAIN
    )
    text = mail.text.replace("https://hq.example.org/alerts/42", "")
    assert not _words(text) & ENGLISH, _words(text) & ENGLISH
    assert not _words(mail.subject) & ENGLISH


# --- content ------------------------------------------------------------------------------


def test_frost_mail_in_french() -> None:
    mail = compose_notice(
        _notice(), to=["gardien@example.org"], lang="fr", base_url=BASE, sender_domain=DOMAIN
    )
    assert mail.subject == (
        "[wesh] Risque de gel : température trop basse — Résidence Les Tilleuls, bât. B1, logt 12"
    )
    text = mail.text
    assert "Risque de gel : température trop basse" in text
    assert "critique" in text
    assert "16 janvier 2026 à 00 h 00" in text  # since, Paris time
    assert "Nouvelle alerte, déclenchée le 16 janvier 2026 à 03 h 00." in text
    assert "Agence Nord (AG-NORD)" in text
    assert "Résidence Les Tilleuls (RES-TIL)" in text
    assert "Bâtiment B (B1)" in text
    assert "Logement 12 (12)" in text
    assert "wes-12" in text and "site-b1" in text
    assert "Séjour (température) — temp.1" in text
    assert "10,5 °C" in text and "12 °C" in text
    assert "Voir l'alerte : https://hq.example.org/alerts/42" in text
    assert "Valeur mesurée" in text and "Seuil" in text
    assert mail.lang == "fr" and mail.to == ("gardien@example.org",)
    assert mail.headers["Content-Language"] == "fr"
    assert mail.headers["X-Wesh-Alert"] == "42"
    assert mail.headers["X-Wesh-Notice"] == "fired"
    assert mail.headers["Date"] == "Fri, 16 Jan 2026 03:00:00 +0100"
    assert 'href="https://hq.example.org/alerts/42"' in mail.html
    assert "10,5 °C" in mail.html and 'lang="fr"' in mail.html


def test_frost_mail_in_english() -> None:
    mail = compose_notice(
        _notice(), to=["a@example.org"], lang="en", base_url=BASE, sender_domain=DOMAIN
    )
    assert mail.subject == (
        "[wesh] Frost risk: temperature too low — Résidence Les Tilleuls, bldg B1, flat 12"
    )
    assert "New alert, fired on 16 January 2026, 03:00." in mail.text
    assert "Since" in mail.text and "16 January 2026, 00:00" in mail.text
    assert "Séjour (temperature) — temp.1" in mail.text
    assert "10.5 °C" in mail.text and "Threshold" in mail.text
    assert "critical" in mail.text
    assert "See the alert: https://hq.example.org/alerts/42" in mail.text


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_leak_mail(lang: str) -> None:
    place = replace(
        DWELLING,
        channel_path="impulsion.1.index",
        channel_kind="cold_water",
        channel_label="Eau froide cuisine",
    )
    notice = _notice(
        rule="leak_night_flow",
        place=place,
        severity="warning",
        value=1234.5,
        unit="L/h",
        threshold=20.0,
        details={"nights": 3, "median_l_h": 2.25},
    )
    mail = compose_notice(
        notice, to=["a@example.org"], lang=lang, base_url=BASE, sender_domain=DOMAIN
    )
    if lang == "fr":
        assert mail.subject.startswith("[wesh] Fuite d'eau probable : débit nocturne élevé — ")
        assert "1\u202f234,5 L/h" in mail.text
        assert "Nuits consécutives" in mail.text and "2,25" in mail.text
        assert "(eau froide)" in mail.text and "avertissement" in mail.text
    else:
        assert mail.subject.startswith("[wesh] Probable water leak: high night flow — ")
        assert "1,234.5 L/h" in mail.text
        assert "Consecutive nights" in mail.text and "2.25" in mail.text
        assert "(cold water)" in mail.text and "warning" in mail.text


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_dead_gateway_mail_lists_its_boxes(lang: str) -> None:
    boxes = tuple(
        replace(
            DWELLING,
            box_ref=f"wes-{n}",
            dwelling_code=str(n),
            channel_path=None,
            channel_kind=None,
            channel_label=None,
        )
        for n in range(1, 61)
    )
    notice = _notice(
        rule="gateway_silent",
        subject=Subject("gateway", 5),
        place=GATEWAY,
        value=3.0,
        unit="h",
        threshold=2.0,
        grouped=boxes,
        details={},
    )
    mail = compose_notice(
        notice, to=["a@example.org"], lang=lang, base_url=BASE, sender_domain=DOMAIN
    )
    if lang == "fr":
        assert mail.subject == (
            "[wesh] Passerelle d'immeuble muette — Résidence Les Tilleuls, bât. B1, site site-b1"
        )
        assert "Cette alerte couvre aussi 60 élément(s), sans message séparé :" in mail.text
        assert "  - bât. B1, boîtier wes-1, logt 1" in mail.text
        assert "… et 10 autre(s)." in mail.text
        assert "Logement" not in mail.text.split("Cette alerte")[0]  # a gateway has no dwelling
    else:
        assert "This alert also covers 60 item(s), without separate messages:" in mail.text
        assert "  - bldg B1, box wes-1, flat 1" in mail.text
        assert "… and 10 more." in mail.text
    assert "wes-50" in mail.text and "wes-51" not in mail.text
    assert mail.html.count("<li>") == 51


def test_reminder_escalation_and_ack() -> None:
    reminder = _notice(kind="reminder", sequence=3)
    mail = compose_notice(
        reminder, to=["a@example.org"], lang="fr", base_url=BASE, sender_domain=DOMAIN
    )
    assert mail.subject.startswith("[wesh] Rappel n°3 : Risque de gel")
    assert "Rappel n°3 : l'alerte est toujours active" in mail.text
    assert "Personne ne l'a encore prise en charge." in mail.text
    escalated = compose_notice(
        _notice(kind="escalated"),
        to=["chef@example.org"],
        lang="en",
        base_url=BASE,
        sender_domain=DOMAIN,
    )
    assert escalated.subject.startswith("[wesh] Escalated: Frost risk")
    assert "nobody has acknowledged it" in escalated.text
    acked = _notice(
        kind="reminder",
        sequence=1,
        acked_by="Mme Dupont",
        acked_at=datetime(2026, 1, 16, 8, 15, tzinfo=UTC),
    )
    mail = compose_notice(
        acked, to=["a@example.org"], lang="fr", base_url=BASE, sender_domain=DOMAIN
    )
    assert "Prise en charge par Mme Dupont le 16 janvier 2026 à 09 h 15." in mail.text


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("fr", "Retour à la normale le 17 janvier 2026 à 03 h 20, après 1 j 0 h."),
        ("en", "Back to normal on 17 January 2026, 03:20, after 1 d 0 h."),
    ],
)
def test_resolved_mail_says_how_long(lang: str, expected: str) -> None:
    notice = _notice(
        kind="resolved",
        resolved_at=FIRED + timedelta(days=1, minutes=20),
        acked_by="M. Martin",
        acked_at=FIRED + timedelta(hours=1),
    )
    mail = compose_notice(
        notice, to=["a@example.org"], lang=lang, base_url=BASE, sender_domain=DOMAIN
    )
    assert expected in mail.text
    assert mail.subject.startswith("[wesh] Résolu : " if lang == "fr" else "[wesh] Resolved: ")
    assert "M. Martin" in mail.text


def test_short_durations_and_summer_time() -> None:
    summer = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # 12:00 in Paris (UTC+2)
    notice = _notice(
        kind="resolved",
        started_at=summer,
        fired_at=summer,
        resolved_at=summer + timedelta(minutes=95),
    )
    mail = compose_notice(
        notice, to=["a@example.org"], lang="fr", base_url=BASE, sender_domain=DOMAIN
    )
    assert "1er" not in mail.text
    assert "1 juillet 2026 à 13 h 35, après 1 h 35 min." in mail.text
    quick = replace(notice, resolved_at=summer + timedelta(minutes=7))
    assert (
        "après 7 min."
        in compose_notice(
            quick, to=["a@example.org"], lang="fr", base_url=BASE, sender_domain=DOMAIN
        ).text
    )


def test_details_are_labelled_and_dates_shown_in_paris_time() -> None:
    notice = _notice(
        details={
            "last_reading_at": "2026-01-15T21:00:00+00:00",
            "custom_key": True,
            "nothing": None,
        }
    )
    text = compose_notice(
        notice, to=["a@example.org"], lang="fr", base_url=BASE, sender_domain=DOMAIN
    ).text
    assert re.search(r"Dernier relevé\s+15 janvier 2026 à 22 h 00", text)
    assert re.search(r"custom_key\s+oui", text)
    assert re.search(r"nothing\s+—", text)


# --- identity -----------------------------------------------------------------------------


def test_message_id_is_stable_and_derived_from_the_dedup_key() -> None:
    notice = _notice()
    first = compose_notice(
        notice,
        to=["b@example.org", "a@example.org"],
        lang="fr",
        base_url=BASE,
        sender_domain=DOMAIN,
    )
    again = compose_notice(
        notice,
        to=["A@example.org", "b@example.org"],
        lang="fr",
        base_url=BASE,
        sender_domain=DOMAIN,
    )
    assert first.message_id == again.message_id
    assert (
        first.dedup_key
        == again.dedup_key
        == notice_dedup_key(notice, to=["a@example.org", "b@example.org"], lang="fr")
    )
    assert first.dedup_key is not None and first.dedup_key.startswith("42:fired:0:fr:")
    assert len(first.dedup_key) <= 64
    assert first.message_id == f"<wesh.{first.dedup_key.replace(':', '.')}@example.org>"
    others = {
        compose_notice(
            notice,
            to=["a@example.org", "b@example.org"],
            lang="en",
            base_url=BASE,
            sender_domain=DOMAIN,
        ).message_id,
        compose_notice(
            notice, to=["a@example.org"], lang="fr", base_url=BASE, sender_domain=DOMAIN
        ).message_id,
        compose_notice(
            replace(notice, kind="reminder", sequence=1),
            to=["a@example.org"],
            lang="fr",
            base_url=BASE,
            sender_domain=DOMAIN,
        ).message_id,
        compose_notice(
            replace(notice, kind="reminder", sequence=2),
            to=["a@example.org"],
            lang="fr",
            base_url=BASE,
            sender_domain=DOMAIN,
        ).message_id,
    }
    assert len(others | {first.message_id}) == 5


def test_sender_domain() -> None:
    assert sender_domain_of("Wesh <wesh@example.org>") == "example.org"
    assert sender_domain_of("wesh@localhost") == "localhost"
    assert sender_domain_of("nonsense") == "localhost"


def test_long_names_keep_the_subject_short() -> None:
    long = "très " * 80
    place = replace(
        DWELLING, residence_name="Résidence " + long, building_code=long, dwelling_code=long
    )
    mail = compose_notice(
        _notice(place=place), to=["a@example.org"], lang="fr", base_url=BASE, sender_domain=DOMAIN
    )
    assert len(mail.subject) == MAX_SUBJECT_CHARS
    assert mail.subject.startswith("[wesh] Risque de gel : température trop basse — Résidence")
    assert mail.subject.endswith("…")
    assert "très très" in mail.text  # the body keeps the names (capped at 120 characters)


@pytest.mark.parametrize("rule", [rule for family in RULES.values() for rule in family])
def test_every_subject_survives_the_wire_word_for_word(rule: str) -> None:
    place = replace(DWELLING, residence_name="Résidence Les Tilleuls — Côté Jardin Été")
    for lang in ("fr", "en"):
        for kind in NOTICE_KINDS:
            notice = _notice(rule=rule, kind=kind, place=place, resolved_at=FIRED)
            mail = compose_notice(
                notice, to=["a@example.org"], lang=lang, base_url=BASE, sender_domain=DOMAIN
            )
            raw = to_message(mail, sender="wesh@example.org").as_bytes()
            assert max(len(line) for line in raw.split(b"\r\n")) <= 998
            back = message_from_bytes(raw, policy=policy.default)
            # CPython's 78-column folding used to lose the space between encoded words
            assert back["Subject"] == mail.subject, (rule, lang, kind)


# --- hostile inventory texts --------------------------------------------------------------

HOSTILE = Place(
    agency_id=1,
    agency_code="<b>A</b>",
    agency_name='Agence "Nord" & <script>alert(1)</script>',
    residence_id=2,
    residence_code="R\r\nBcc: victim@example.org",
    residence_name="Les Tilleuls\nBcc: victim@example.org",
    building_id=3,
    building_code="B1\x00\x1b[31m",
    building_name="<img src=x onerror=alert(1)>",
    dwelling_id=4,
    dwelling_code="12",
    dwelling_label="Logt 12 <a href='javascript:alert(1)'>x</a>",
    channel_path="temp.1",
    channel_kind="<i>temperature</i>",
    channel_label="Séjour\u2028forged line",
)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_hostile_inventory_names_are_escaped_and_folded(lang: str) -> None:
    notice = _notice(place=HOSTILE, unit="<u>°C</u>", details={"<k>": "<v>"})
    mail = compose_notice(
        notice, to=["a@example.org"], lang=lang, base_url=BASE, sender_domain=DOMAIN
    )
    assert "<script" not in mail.html and "<img" not in mail.html and "<a href='" not in mail.html
    assert "<u>" not in mail.html and "<k>" not in mail.html and "<i>" not in mail.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html
    assert "&quot;Nord&quot; &amp;" in mail.html
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert "\x00" not in mail.text and "\x1b" not in mail.text and "\u2028" not in mail.text
    assert not any(line.startswith("Bcc:") for line in mail.text.splitlines())
    raw = to_message(mail, sender="wesh@example.org").as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed["To"] == "a@example.org"
    assert "Les Tilleuls Bcc: victim@example.org" in str(parsed["Subject"])


_TEXT = st.text(st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=150, deadline=None)
@given(
    names=st.lists(_TEXT, min_size=8, max_size=8),
    value=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    lang=st.sampled_from(["fr", "en"]),
    kind=st.sampled_from(NOTICE_KINDS),
    details=st.dictionaries(
        st.text(max_size=20),
        st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
        max_size=5,
    ),
)
def test_any_inventory_text_gives_a_sendable_mail(
    names: list[str], value: float | None, lang: str, kind: str, details: dict[str, object]
) -> None:
    place = Place(
        1,
        names[0],
        names[1],
        2,
        names[2],
        names[3],
        3,
        names[4],
        names[5],
        4,
        names[6],
        names[7],
        names[0],
        names[1],
        names[2],
        names[3],
        names[4],
    )
    notice = _notice(
        place=place,
        value=value,
        kind=kind,
        details=details,
        unit=names[5],
        acked_by=names[6] or None,
        resolved_at=FIRED + timedelta(hours=1),
    )
    mail = compose_notice(
        notice, to=["a@example.org"], lang=lang, base_url=BASE, sender_domain=DOMAIN
    )
    assert len(mail.subject) <= MAX_SUBJECT_CHARS
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert "<" not in re.sub(r"</?[a-z0-9]+[^<>]*>", "", mail.html.split("<body", 1)[1])
    raw = to_message(mail, sender="wesh@example.org").as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Message-ID"] == mail.message_id


# --- the MIME message and the test mail ---------------------------------------------------


def test_to_message_is_multipart_alternative() -> None:
    mail = compose_notice(
        _notice(),
        to=["a@example.org", "b@example.org"],
        lang="fr",
        base_url=BASE,
        sender_domain=DOMAIN,
    )
    message = to_message(mail, sender="Wesh <wesh@example.org>")
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert message["To"] == "a@example.org, b@example.org"
    assert message["Content-Language"] == "fr"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] == "Fri, 16 Jan 2026 03:00:00 +0100"
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None and "Risque de gel" in plain.get_content()


@pytest.mark.parametrize(
    ("lang", "subject"), [("fr", "[wesh] Message de test"), ("en", "[wesh] Test message")]
)
def test_test_mail(lang: str, subject: str) -> None:
    now = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 in Paris, the night of the change
    mail = compose_test_mail(to=["a@example.org"], lang=lang, sender_domain=DOMAIN, now=now)
    assert mail.subject == subject
    assert ("29 mars 2026 à 03 h 30" if lang == "fr" else "29 March 2026, 03:30") in mail.text
    assert mail.dedup_key is None
    assert mail.message_id.endswith("@example.org>")
    assert mail.headers["Date"] == "Sun, 29 Mar 2026 03:30:00 +0200"


def test_bad_arguments() -> None:
    with pytest.raises(UsageError, match="language"):
        compose_notice(
            _notice(), to=["a@example.org"], lang="de", base_url=BASE, sender_domain=DOMAIN
        )
    with pytest.raises(UsageError, match="recipient"):
        compose_notice(_notice(), to=[" "], lang="fr", base_url=BASE, sender_domain=DOMAIN)
    with pytest.raises(UsageError, match="domain"):
        compose_notice(
            _notice(), to=["a@example.org"], lang="fr", base_url=BASE, sender_domain="bad domain"
        )
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - on purpose
    with pytest.raises(UsageError, match="naive"):
        compose_test_mail(to=["a@example.org"], lang="fr", sender_domain=DOMAIN, now=naive)
