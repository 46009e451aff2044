"""Recipients by patrimony scope, most specific first, escalation apart."""

from __future__ import annotations

import dataclasses

from tests.hq.alerts.conftest import PLACE
from wesh.hq.alerts.config import AlertsConfig, ContactSettings
from wesh.hq.alerts.recipients import Recipient, by_language, recipients_for, scope_rank


def _config(*contacts: ContactSettings, lang: str = "fr") -> AlertsConfig:
    return AlertsConfig(lang=lang, contacts=list(contacts))  # type: ignore[arg-type]


def test_most_specific_scope_first_and_star_always_applies() -> None:
    config = _config(
        ContactSettings(scope="*", emails=["astreinte@bailleur.fr"]),
        ContactSettings(scope="agency:AG-NORD", emails=["nord@bailleur.fr"]),
        ContactSettings(scope="residence:RES-TIL", emails=["tilleuls@bailleur.fr"], lang="en"),
        ContactSettings(scope="building:RES-TIL-B1", emails=["gardien.b1@bailleur.fr"]),
        ContactSettings(scope="dwelling:RES-TIL-B1-012", emails=["logt12@bailleur.fr"]),
        ContactSettings(scope="residence:OTHER", emails=["other@bailleur.fr"]),
        ContactSettings(scope="*", emails=["chef@bailleur.fr"], escalation=True),
    )
    found = recipients_for(config, PLACE)
    assert [r.email for r in found] == [
        "logt12@bailleur.fr",
        "gardien.b1@bailleur.fr",
        "tilleuls@bailleur.fr",
        "nord@bailleur.fr",
        "astreinte@bailleur.fr",
    ]
    assert found[2].lang == "en"
    assert found[0].lang == "fr"
    assert [r.email for r in recipients_for(config, PLACE, escalation=True)] == ["chef@bailleur.fr"]


def test_coarser_place_is_not_mailed_to_dwelling_contacts() -> None:
    gateway_place = dataclasses.replace(PLACE, dwelling_id=None, dwelling_code=None)
    config = _config(
        ContactSettings(scope="dwelling:RES-TIL-B1-012", emails=["logt12@bailleur.fr"]),
        ContactSettings(scope="building:RES-TIL-B1", emails=["b1@bailleur.fr"]),
    )
    assert [r.email for r in recipients_for(config, gateway_place)] == ["b1@bailleur.fr"]


def test_each_address_once_the_most_specific_contact_wins() -> None:
    config = _config(
        ContactSettings(scope="*", emails=["Marie@Bailleur.fr"], name="Tous", lang="fr"),
        ContactSettings(
            scope="building:RES-TIL-B1", emails=["marie@bailleur.fr"], name="Marie", lang="en"
        ),
    )
    assert recipients_for(config, PLACE) == [Recipient("marie@bailleur.fr", "Marie", "en")]


def test_nobody_configured_is_an_empty_list() -> None:
    assert recipients_for(_config(), PLACE) == []


def test_scope_rank() -> None:
    assert scope_rank("*", PLACE) == 4
    assert scope_rank("agency:AG-NORD", PLACE) == 3
    assert scope_rank("dwelling:RES-TIL-B1-012", PLACE) == 0
    assert scope_rank("agency:ag-nord", PLACE) is None  # codes are exact
    assert scope_rank("box:1", PLACE) is None
    assert scope_rank("building:", PLACE) is None


def test_by_language_keeps_order() -> None:
    recipients = [
        Recipient("a@x.fr", None, "fr"),
        Recipient("b@x.fr", None, "en"),
        Recipient("c@x.fr", None, "fr"),
    ]
    assert by_language(recipients) == {"fr": ("a@x.fr", "c@x.fr"), "en": ("b@x.fr",)}
