"""`wesh demo`'s alert part, without running the chain: its configuration, screen and end.

The chain itself (mails produced end to end) is ``tests/test_demo.py`` (the demo) and
``tests/hq/alerts/test_scenario.py`` (the same chain through a night of faults).
"""

from __future__ import annotations

import contextlib
import io
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from rich.console import Console

from wesh.demo import chain as demo_chain
from wesh.demo.building import ALERT_CONTACT, ALERT_SENDER, alerts_toml
from wesh.demo.chain import FAULT_BOX, Paths, _print_mail
from wesh.demo.screen import AlertLine, Screen, plain_line, render
from wesh.hq.alerts.capture import CapturedMail
from wesh.hq.alerts.compose import Mail, to_message
from wesh.hq.alerts.config import config_from_text
from wesh.hq.alerts.model import Place

START = datetime(2025, 1, 15, 4, 45, tzinfo=UTC)


def captured(subject: str, text: str) -> CapturedMail:
    mail = Mail(
        to=(ALERT_CONTACT,),
        subject=subject,
        text=text,
        html=f"<p>{text}</p>",
        lang="fr",
        message_id=f"<{abs(hash(subject))}@siege.bailleur.example>",
        headers={},
    )
    data = to_message(mail, sender=ALERT_SENDER, date=START).as_bytes()
    return CapturedMail(ALERT_SENDER, (ALERT_CONTACT,), data)


def test_the_alerts_configuration_loads_and_mails_the_residence_manager() -> None:
    config = config_from_text(alerts_toml(smtp_port=2525, lang="en"), source="alerts.toml")
    assert (config.smtp.host, config.smtp.port, config.smtp.starttls) == (
        "127.0.0.1",
        2525,
        "never",
    )
    assert config.sender == ALERT_SENDER and config.lang == "en"
    assert config.evaluate_every == timedelta(minutes=10)
    [contact] = config.contacts
    assert contact.scope == "residence:R01" and contact.emails == [ALERT_CONTACT]
    place = Place(1, "AG01", "Agence", 1, "R01", "Résidence", 1, "B001", "Bâtiment")
    assert config.policy("box_silent", place).enabled


def test_the_screen_shows_the_fault_the_open_alerts_and_the_mails() -> None:
    screen = Screen(
        start=START, speed=360, total_s=55, socket="s", db="d", loss_pct=10, alerts_on=True
    )
    screen.fault = "panne injectée : B001-L04 ne répond plus depuis 06:29"
    screen.alerts = [AlertLine("box_silent", "B001-L04", "firing")]
    screen.mails = 1
    for width in (160, 90):  # two columns, and the compact screen
        out = io.StringIO()
        Console(file=out, width=width, color_system=None).print(
            render(screen, lang="fr", width=width)
        )
        text = out.getvalue()
        assert "box_silent B001-L04 (active)" in text, width
        assert "panne injectée : B001-L04" in text, width
    assert plain_line(screen, "fr").endswith("alertes 1, courriels 1")
    assert plain_line(screen, "en").endswith("alerts 1, mails 1")
    screen.alerts_on = False  # no capturing server: no alert section
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(render(screen, lang="fr", width=160))
    assert "Alertes (siège)" not in out.getvalue()


def test_the_end_lists_the_mails_and_prints_the_faults_one(tmp_path: Path) -> None:
    mails = [
        captured("[wesh] Fuite d'eau probable — logt B001-L02", "Fuite chez B001-L02"),
        captured(f"[wesh] Boîtier WES muet — logt {FAULT_BOX}", f"Le boîtier {FAULT_BOX} se tait"),
    ]
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None)
    _print_mail(console, mails, Paths(tmp_path / "demo"), "fr")
    text = out.getvalue()
    assert "capturés par le serveur SMTP local (2)" in text
    assert "[wesh] Fuite d'eau probable — logt B001-L02" in text  # listed
    assert "Fuite chez B001-L02" not in text  # ... but not printed
    assert f"Le boîtier {FAULT_BOX} se tait" in text  # the fault's mail, printed
    assert f"To: {ALERT_CONTACT}" in text and f"From: {ALERT_SENDER}" in text
    assert "wesh hq alerts list --all --db " in text
    out = io.StringIO()
    _print_mail(Console(file=out, width=120), [], Paths(tmp_path / "demo"), "en")
    assert "no alert mail was sent yet" in out.getvalue()


def test_without_aiosmtpd_the_alert_part_is_skipped_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a bare `pip install wesh`: importing aiosmtpd fails
    monkeypatch.setitem(sys.modules, "aiosmtpd", None)
    monkeypatch.setitem(sys.modules, "aiosmtpd.smtp", None)
    assert not demo_chain.aiosmtpd_installed()
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    with contextlib.ExitStack() as stack:
        alerting = demo_chain.open_alerting(
            stack, cast("Any", object()), Paths(tmp_path), "en", console
        )
    assert alerting is None
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert "install wesh[demo] to see the alert mail" in lines[0]
    assert not (tmp_path / "alerts.toml").exists()


def test_with_aiosmtpd_the_check_says_so() -> None:
    pytest.importorskip("aiosmtpd")
    assert demo_chain.aiosmtpd_installed()
