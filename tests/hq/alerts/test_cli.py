"""``wesh hq alerts``: every command through click's CliRunner, on SQLite.

A small estate (three dwellings) gets four cold hours in dwelling 1's living room, stamped
just before now: ``evaluate`` (the real rules, the wall clock) opens and fires a frost
alert and queues its mail; the other commands are checked on that. ``test-mail`` and
``run`` talk to a real SMTP server on loopback; ``run`` runs in a child process stopped
with SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.hq.alerts.conftest import build_alert_estate
from wesh.hq.alerts.capture import CaptureServer
from wesh.hq.alerts.cli import alerts, parse_duration, parse_when
from wesh.hq.db import make_engine
from wesh.hq.ingest import ingest
from wesh.hq.migrate import migrate
from wesh.hq.timeutil import PARIS
from wesh.sync.sink import SyncReading

CONTACT = "gestionnaire@example.org"


def config_text(port: int = 25, *, evaluate_every: str = "5m") -> str:
    return (
        'base_url = "https://hq.example.org"\n'
        'sender = "wesh@example.org"\n'
        f'evaluate_every = "{evaluate_every}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nstarttls = "never"\ntimeout_s = 5\n'
        f'[[contacts]]\nscope = "*"\nemails = ["{CONTACT}"]\n'
    )


def cli(*args: str, lang: str = "fr_FR.UTF-8") -> Result:
    return CliRunner().invoke(alerts, list(args), env={"LANG": lang})


def cold_living_room(url: str) -> str:
    """Fill the store at ``url`` with the small estate and a cold living room in dwelling 1."""
    engine = make_engine(url)
    try:
        migrate(engine)
        build_alert_estate(engine)
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        readings = [
            SyncReading(
                site="site-b1",
                box="box-1",
                path="temp.1",
                at=hour - timedelta(hours=h),
                value=8.0,
                unit="°C",
                kind="gauge",
                quality="measured",
                aggregate="hour_mean",
            )
            for h in range(1, 5)
        ]
        assert ingest(engine, readings).inserted == 4
    finally:
        engine.dispose()
    return url


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A SQLite store with the small estate and a cold living room in dwelling 1."""
    return cold_living_room(str(tmp_path / "hq.sqlite3"))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(config_text(), encoding="utf-8")
    return path


def evaluated(db: str, config: Path) -> int:
    """Run ``evaluate``; return the frost alert's id."""
    result = cli("evaluate", "--db", db, "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["fired"] == 1 and report["mails_queued"] == 1, report
    listed = json.loads(cli("list", "--db", db, "--json").output)
    assert [a["rule"] for a in listed] == ["frost"]
    return int(listed[0]["id"])


# ----------------------------------------------------------------------------- pure parsing


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("3d", 259200), ("3j", 259200), ("1w", 604800),
     ("1,5h", 5400), (" 2 H ", 7200)],
)  # fmt: skip
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "2", "h", "-2h", "0m", "2 hours", "2x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_duration(text)


def test_times_are_paris_local_unless_they_say_otherwise() -> None:
    now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    assert parse_when("2025-01-15", now=now, past=True) == datetime(2025, 1, 14, 23, tzinfo=UTC)
    assert parse_when("2025-07-01T08:30", now=now, past=False) == datetime(
        2025, 7, 1, 6, 30, tzinfo=UTC
    )  # summer time: UTC+2
    assert parse_when("2025-01-15T08:30Z", now=now, past=True) == datetime(
        2025, 1, 15, 8, 30, tzinfo=UTC
    )
    assert parse_when("2d", now=now, past=True) == now - timedelta(days=2)
    assert parse_when("3h", now=now, past=False) == now + timedelta(hours=3)
    with pytest.raises(ValueError, match=r"."):
        parse_when("yesterday", now=now, past=True)


# ----------------------------------------------------------------------------- commands


def test_evaluate_then_list_show_and_history(db: str, config: Path) -> None:
    result = cli("evaluate", "--db", db, "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "déclenchées 1" in result.output and "1 courriel(s) mis en file" in result.output
    again = cli("evaluate", "--db", db, "--config", str(config), "--lang", "en")
    assert again.exit_code == 0, again.output
    assert "no change" in again.output and "0 mail(s) queued" in again.output

    table = cli("list", "--db", db)
    assert table.exit_code == 0, table.output
    assert "Alertes (1)" in table.output
    assert "frost" in table.output and "active" in table.output and "critique" in table.output
    assert "RES-TIL / RES-TIL-B1 / RES-TIL-B1-001 / temp.1" in table.output
    assert "8 °C" in table.output

    listed = json.loads(cli("list", "--db", db, "--json").output)
    assert len(listed) == 1
    alert = listed[0]
    assert alert["state"] == "firing" and alert["severity"] == "critical"
    assert alert["place"]["dwelling_code"] == "RES-TIL-B1-001"
    assert alert["value"] == pytest.approx(8.0)
    # filters
    assert json.loads(cli("list", "--db", db, "--json", "--rule", "leak_burst").output) == []
    assert json.loads(cli("list", "--db", db, "--json", "--state", "resolved").output) == []
    assert len(json.loads(cli("list", "--db", db, "--json", "--all").output)) == 1
    by_building = cli("list", "--db", db, "--json", "--building", "RES-TIL-B1")
    assert len(json.loads(by_building.output)) == 1
    by_residence = cli("list", "--db", db, "--json", "--residence", "RES-TIL", "--since", "1d")
    assert len(json.loads(by_residence.output)) == 1
    assert "Aucune alerte." in cli("list", "--db", db, "--rule", "leak_burst").output

    shown = cli("show", str(alert["id"]), "--db", db)
    assert shown.exit_code == 0, shown.output
    assert "Historique" in shown.output and "fired" in shown.output
    assert f"Alerte {alert['id']} — frost (active, critique)" in shown.output
    assert "seuil 12 °C" in shown.output and "RES-TIL-B1-001 / temp.1" in shown.output
    data = json.loads(cli("show", str(alert["id"]), "--db", db, "--json").output)
    assert data["id"] == alert["id"]
    assert [e["kind"] for e in data["history"]][:2] == ["pending", "fired"]

    events = json.loads(cli("history", "--db", db, "--json").output)
    assert {e["kind"] for e in events} >= {"pending", "fired"}
    assert all(e["alert_id"] == alert["id"] for e in events)
    assert json.loads(cli("history", str(alert["id"]), "--db", db, "--json").output) == [
        {k: v for k, v in e.items()} for e in events
    ]
    assert json.loads(cli("history", "--db", db, "--json", "--since", "2999-01-01").output) == []


def test_ack_is_recorded_with_who_and_why(db: str, config: Path) -> None:
    alert_id = evaluated(db, config)
    result = cli("ack", str(alert_id), "--by", "M. Martin", "--note", "chauffagiste prévenu",
                 "--db", db, "--config", str(config))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"Alerte {alert_id} acquittée par M. Martin." in result.output
    data = json.loads(cli("show", str(alert_id), "--db", db, "--json").output)
    assert data["acked_by"] == "M. Martin" and data["ack_note"] == "chauffagiste prévenu"
    assert "acked" in [e["kind"] for e in data["history"]]
    assert "M. Martin" in cli("list", "--db", db).output
    missing = cli("ack", "999", "--by", "x", "--db", db)
    assert missing.exit_code == 1
    assert missing.output.startswith("wesh hq alerts : erreur : ")


def test_mute_by_scope_then_unmute(db: str, config: Path) -> None:
    alert_id = evaluated(db, config)
    muted = cli("mute", "--building", "RES-TIL-B1", "--rule", "frost", "--for", "3d",
                "--by", "M. Martin", "--reason", "travaux", "--db", db)  # fmt: skip
    assert muted.exit_code == 0, muted.output
    assert "Sourdine n° 1 posée (building RES-TIL-B1, frost) jusqu'au " in muted.output
    history = json.loads(cli("history", str(alert_id), "--db", db, "--json").output)
    assert "muted" in [e["kind"] for e in history]
    forever = cli("mute", "--alert", str(alert_id), "--until", "never", "--by", "x", "--db", db)
    assert "jusqu'à levée" in forever.output
    until = cli("mute", "--dwelling", "RES-TIL-B1-002", "--until", "2999-01-01", "--by", "x",
                "--db", db, "--lang", "en")  # fmt: skip
    assert until.exit_code == 0, until.output
    assert "Mute #3 set (dwelling RES-TIL-B1-002, every rule) until 2999-01-01 00:00" in (
        until.output
    )
    lifted = cli("unmute", "1", "--by", "M. Martin", "--db", db)
    assert lifted.exit_code == 0, lifted.output
    assert "Sourdine n° 1 levée par M. Martin." in lifted.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--for", "2h", "--by", "x"], "exactement un de --alert"),
        (["--building", "B", "--alert", "1", "--for", "2h", "--by", "x"], "exactement un"),
        (["--building", "RES-TIL-B1", "--by", "x"], "exactement un de --until et --for"),
        (["--building", "RES-TIL-B1", "--for", "2h", "--until", "never", "--by", "x"],
         "exactement un de --until"),
        (["--building", "RES-TIL-B1", "--for", "soon", "--by", "x"], "durée invalide"),
        (["--building", "RES-TIL-B1", "--until", "demain", "--by", "x"], "date invalide"),
        (["--building", "RES-TIL-B1", "--rule", "frozt", "--for", "2h", "--by", "x"],
         "règle inconnue 'frozt'"),
    ],
)  # fmt: skip
def test_mute_refuses_unclear_requests(db: str, args: list[str], says: str) -> None:
    result = cli("mute", *args, "--db", db)
    assert result.exit_code == 2, result.output
    assert says in result.output


def test_unknown_places_are_named(db: str) -> None:
    result = cli("mute", "--building", "B999", "--for", "2h", "--by", "x", "--db", db)
    assert result.exit_code == 1
    assert "bâtiment 'B999' inconnu(e)" in result.output
    english = cli("list", "--residence", "R9", "--db", db, lang="en_GB.UTF-8")
    assert english.exit_code == 1
    assert english.output.startswith("wesh hq alerts: error: unknown residence 'R9'")
    both = cli("list", "--residence", "R", "--building", "B", "--db", db)
    assert both.exit_code == 2 and "s'excluent" in both.output


def test_outbox_status_and_listing(db: str, config: Path) -> None:
    empty = json.loads(cli("outbox", "--db", db, "--json").output)
    assert empty["queued"] == 0 and empty["sent"] == 0
    evaluated(db, config)
    status = json.loads(cli("outbox", "--db", db, "--json", "--list", "queued").output)
    assert status["queued"] == 1 and status["due"] == 1 and status["failed"] == 0
    [mail] = status["mails"]
    assert mail["recipients"] == [CONTACT] and mail["notice_kind"] == "fired"
    assert mail["subject"].startswith("[wesh] ")
    text = cli("outbox", "--db", db, "--list", "all")
    assert text.exit_code == 0, text.output
    assert "File d'envoi : 1 courriel(s) en attente dont 1 à envoyer maintenant" in text.output
    assert "[wesh] " in text.output  # the subject, not eaten as markup
    assert CONTACT in text.output


def test_test_mail_reports_success_and_clear_errors(tmp_path: Path) -> None:
    with CaptureServer(refusals={"nobody@example.org": "550 5.1.1 no such user"}) as server:
        config = tmp_path / "alerts.toml"
        config.write_text(config_text(server.port), encoding="utf-8")
        sent = cli("test-mail", "--to", CONTACT, "--config", str(config), "--lang", "en")
        assert sent.exit_code == 0, sent.output
        assert f"Test mail sent to {CONTACT} through 127.0.0.1:{server.port}" in sent.output
        [mail] = server.messages
        assert mail.rcpt_tos == (CONTACT,) and mail.mail_from == "wesh@example.org"
        assert mail.message["Content-Language"] == "en"
        partly = cli("test-mail", "--to", CONTACT, "--to", "nobody@example.org",
                     "--config", str(config))  # fmt: skip
        assert partly.exit_code == 1
        assert "Refusé pour nobody@example.org : 550" in partly.output
        port = server.port
    # the server is gone: a clear error, exit status 1
    down = cli("test-mail", "--to", CONTACT, "--config", str(config))
    assert down.exit_code == 1
    assert down.output.startswith(
        f"wesh hq alerts : erreur : Échec de l'envoi par 127.0.0.1:{port} : "
    )
    assert re.search(r"cannot (reach|talk to) the SMTP server", down.output)
    bad = tmp_path / "bad.toml"
    bad.write_text("[smtp]\nport = 0\n", encoding="utf-8")
    wrong = cli("test-mail", "--to", CONTACT, "--config", str(bad))
    assert wrong.exit_code == 1
    assert "bad.toml:2" in wrong.output


def test_run_evaluates_sends_and_stops_on_sigterm(db: str, tmp_path: Path) -> None:
    with CaptureServer() as server:
        config = tmp_path / "alerts.toml"
        config.write_text(config_text(server.port, evaluate_every="1h"), encoding="utf-8")
        command = [
            sys.executable, "-c", "from wesh.hq.alerts.cli import alerts; alerts()",
            "run", "--db", db, "--config", str(config), "--outbox-every", "0.2",
            "--worker-id", "test-worker",
        ]  # fmt: skip
        env = {**os.environ, "LANG": "fr_FR.UTF-8"}
        child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        try:
            deadline = time.monotonic() + 60
            while not server.messages and time.monotonic() < deadline and child.poll() is None:
                time.sleep(0.1)
            assert server.messages, "no mail arrived"
            child.send_signal(signal.SIGTERM)
            _, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
        [mail] = server.messages
    assert child.returncode == 0, err
    assert mail.rcpt_tos == (CONTACT,) and "RES-TIL-B1-001" in mail.subject
    assert "Veilleur test-worker : évaluation toutes les 1:00:00" in err
    assert "Veilleur arrêté : 1 évaluation(s), 1 courriel(s) envoyé(s)." in err
    assert "INFO wesh.hq.alerts.cli: Alert evaluation: " in err  # the logs, on stderr
    history = json.loads(cli("history", "--db", db, "--json").output)
    assert {e["actor"] for e in history if e["kind"] == "fired"} == {"test-worker"}


def test_local_times_in_tables_are_paris_time(db: str, config: Path) -> None:
    alert_id = evaluated(db, config)
    data = json.loads(cli("show", str(alert_id), "--db", db, "--json").output)
    fired = datetime.fromisoformat(data["fired_at"]).astimezone(PARIS)
    assert fired.strftime("%Y-%m-%d %H:%M") in cli("list", "--db", db).output


@pytest.mark.parametrize("engine_url", ["mariadb", "postgresql"], indirect=True)
def test_the_commands_on_server_engines(engine_url: str, config: Path) -> None:
    db = cold_living_room(engine_url)
    alert_id = evaluated(db, config)
    acked = cli("ack", str(alert_id), "--by", "M. Martin", "--db", db, "--config", str(config))
    assert acked.exit_code == 0, acked.output
    events = json.loads(cli("history", "--db", db, "--json", "--since", "1d").output)
    assert [e["kind"] for e in events] == ["pending", "fired", "acked"]
    muted = cli("mute", "--residence", "RES-TIL", "--for", "1h", "--by", "x", "--db", db)
    assert muted.exit_code == 0, muted.output
    status = json.loads(cli("outbox", "--db", db, "--json", "--list", "all").output)
    assert status["queued"] == 1 and len(status["mails"]) == 1
    assert "frost" in cli("list", "--db", db, "--residence", "RES-TIL").output


def test_options_take_the_configurations_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("45min") == timedelta(minutes=45)
