"""``wesh hq``: the headquarters store from the command line.

Commands::

    wesh hq init --db URL                          create the schema, or upgrade it
    wesh hq import FILE --db URL                   load an inventory (.csv or .toml)
    wesh hq export-gateway-config SITE --db URL    weshd's TOML for a site, from the inventory
    wesh hq consumption --db URL --building B001 --from 2024-01 --to 2024-12 --by month
    wesh hq generate --db URL                      a realistic estate and a year of data
    wesh hq purge-tenancies --db URL [--grace DAYS | --ended-before DAY] [--dry-run]
                                                   delete ended leases' detailed data
    wesh hq refresh --db URL                       re-roll every stale rollup now

``--db`` takes a URL or a SQLite path (``docs/hq-cli.md``); without it, ``WESH_HQ_DB``,
then ``./wesh-hq.sqlite3``. The environment is read here only. The interface speaks
French, or English with ``--lang en`` (or a ``LANG`` starting with ``en``); every
user-facing string is in :data:`MESSAGES`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wesh.errors import UsageError, WeshError
from wesh.hq.alerts.cli import alerts
from wesh.hq.cli_common import Lang, common_options, dump_json, new_console, open_engine

if TYPE_CHECKING:
    from rich.progress import ProgressColumn
    from sqlalchemy import Engine

__all__ = ["MESSAGES", "format_quantity", "hq", "message", "parse_period_bound"]

MESSAGES: dict[str, dict[Lang, str]] = {
    "error": {"fr": "wesh hq : erreur : {error}", "en": "wesh hq: error: {error}"},
    "init.done": {
        "fr": "Base {url} prête (révision du schéma {revision}).",
        "en": "Database {url} ready (schema revision {revision}).",
    },
    "export.written": {
        "fr": "Configuration de {site} écrite dans {path} ({boxes} boîtiers).",
        "en": "Configuration of {site} written to {path} ({boxes} boxes).",
    },
    "generate.task": {"fr": "Génération", "en": "Generating"},
    "generate.start": {
        "fr": "Génération de {buildings} bâtiments, du {first} au {end} "
        "(relevés horaires à partir du {raw_from}) dans {url}…",
        "en": "Generating {buildings} buildings, {first} to {end} "
        "(hourly readings from {raw_from}) into {url}…",
    },
    "generate.done": {
        "fr": "Terminé en {seconds} s : {buildings} bâtiments, {boxes} boîtiers, {channels} "
        "voies ; {readings} relevés, {hours} agrégats horaires, {days} agrégats "
        "journaliers ({rate} lignes/s) ; {replacements} compteurs remplacés.",
        "en": "Done in {seconds} s: {buildings} buildings, {boxes} boxes, {channels} "
        "channels; {readings} readings, {hours} hourly rollups, {days} daily rollups "
        "({rate} rows/s); {replacements} meters replaced.",
    },
    "import.done": {
        "fr": "{file} : {applied} enregistrement(s) appliqué(s) ({created} créé(s), "
        "{updated} modifié(s), {unchanged} inchangé(s)).",
        "en": "{file}: {applied} record(s) applied ({created} created, {updated} updated, "
        "{unchanged} unchanged).",
    },
    "import.kind": {
        "fr": "  {kind} : {created} créé(s), {updated} modifié(s), {unchanged} inchangé(s)",
        "en": "  {kind}: {created} created, {updated} updated, {unchanged} unchanged",
    },
    "import.problems": {
        "fr": "{count} enregistrement(s) refusé(s), les autres sont appliqués :",
        "en": "{count} record(s) refused, the others are applied:",
    },
    "record.agency": {"fr": "agence", "en": "agency"},
    "record.residence": {"fr": "résidence", "en": "residence"},
    "record.building": {"fr": "bâtiment", "en": "building"},
    "record.dwelling": {"fr": "logement", "en": "dwelling"},
    "record.tenancy": {"fr": "bail", "en": "tenancy"},
    "record.gateway": {"fr": "passerelle", "en": "gateway"},
    "record.box": {"fr": "boîtier", "en": "box"},
    "record.channel": {"fr": "voie", "en": "channel"},
    "record.meter": {"fr": "compteur", "en": "meter"},
    "record.meter_event": {"fr": "événement de compteur", "en": "meter event"},
    "bad_bound": {
        "fr": "date invalide {text!r} : AAAA-MM-JJ ou AAAA-MM",
        "en": "bad date {text!r}: YYYY-MM-DD or YYYY-MM",
    },
    "bad_range": {
        "fr": "--to ({to}) est avant --from ({start})",
        "en": "--to ({to}) is before --from ({start})",
    },
    "one_subject": {
        "fr": "donnez exactement un de --dwelling, --building, --residence",
        "en": "give exactly one of --dwelling, --building, --residence",
    },
    "json_or_csv": {
        "fr": "--json et --csv s'excluent",
        "en": "--json and --csv exclude each other",
    },
    "col.period": {"fr": "période", "en": "period"},
    "col.kind": {"fr": "nature", "en": "kind"},
    "col.consumption": {"fr": "consommation", "en": "consumption"},
    "col.previous": {"fr": "année précédente", "en": "previous year"},
    "col.change": {"fr": "évolution", "en": "change"},
    "col.per_m2": {"fr": "par m²", "en": "per m²"},
    "col.complete": {"fr": "complet", "en": "complete"},
    "title.consumption": {
        "fr": "Consommation de {subject} du {start} au {end}",
        "en": "Consumption of {subject} from {start} to {end}",
    },
    "none.consumption": {
        "fr": "Aucune donnée pour {subject} sur cette période.",
        "en": "No data for {subject} in this period.",
    },
    "total": {"fr": "Total", "en": "Total"},
    "yes": {"fr": "oui", "en": "yes"},
    "no": {"fr": "non", "en": "no"},
    "kind.electricity": {"fr": "électricité", "en": "electricity"},
    "kind.cold_water": {"fr": "eau froide", "en": "cold water"},
    "kind.hot_water": {"fr": "eau chaude", "en": "hot water"},
    "kind.gas": {"fr": "gaz", "en": "gas"},
    "kind.heat": {"fr": "chauffage", "en": "heat"},
    "kind.other": {"fr": "autre", "en": "other"},
    "subject.dwelling": {"fr": "logement {code}", "en": "dwelling {code}"},
    "subject.building": {"fr": "bâtiment {code}", "en": "building {code}"},
    "subject.residence": {"fr": "résidence {code}", "en": "residence {code}"},
    "per_m2_building": {
        "fr": "--per-m2 ne s'applique qu'à un bâtiment (--building)",
        "en": "--per-m2 only applies to a building (--building)",
    },
    "compare_or_per_m2": {
        "fr": "--compare-previous-year et --per-m2 s'excluent",
        "en": "--compare-previous-year and --per-m2 exclude each other",
    },
    "compare_by": {
        "fr": "--compare-previous-year compare des jours ou des mois (--by day|month)",
        "en": "--compare-previous-year compares days or months (--by day|month)",
    },
    "surface": {
        "fr": "Surface des logements : {surface} m² ({dwellings} logements).",
        "en": "Dwellings' surface: {surface} m² ({dwellings} dwellings).",
    },
    "bad_day": {
        "fr": "date invalide {text!r} : AAAA-MM-JJ",
        "en": "bad date {text!r}: YYYY-MM-DD",
    },
    "purge.cutoff_or_grace": {
        "fr": "--ended-before et --grace s'excluent",
        "en": "--ended-before and --grace exclude each other",
    },
    "purge.task": {"fr": "Purge", "en": "Purging"},
    "purge.none": {
        "fr": "Aucun bail terminé avant le {cutoff} à purger.",
        "en": "No lease ended before {cutoff} is left to purge.",
    },
    "purge.dwelling": {
        "fr": "  {dwelling} : {periods} ({readings} relevés, {hours} agrégats horaires)",
        "en": "  {dwelling}: {periods} ({readings} readings, {hours} hourly rollups)",
    },
    "purge.dry": {
        "fr": "Simulation : {tenancies} bail(s) terminé(s) avant le {cutoff} dans {dwellings} "
        "logement(s) ; seraient supprimés {readings} relevés et {hours} agrégats horaires ; "
        "resteraient {days} agrégats journaliers et {kept} index de sortie. Rien n'est modifié.",
        "en": "Dry run: {tenancies} lease(s) ended before {cutoff} in {dwellings} dwelling(s); "
        "{readings} readings and {hours} hourly rollups would be deleted; {days} daily "
        "rollups and {kept} move-out indexes would stay. Nothing is changed.",
    },
    "purge.done": {
        "fr": "{tenancies} bail(s) terminé(s) avant le {cutoff} purgé(s) dans {dwellings} "
        "logement(s) : {readings} relevés et {hours} agrégats horaires supprimés ; "
        "{days} agrégats journaliers et {kept} index de sortie conservés.",
        "en": "{tenancies} lease(s) ended before {cutoff} purged in {dwellings} dwelling(s): "
        "{readings} readings and {hours} hourly rollups deleted; {days} daily rollups and "
        "{kept} move-out indexes kept.",
    },
    "refresh.task": {"fr": "Réagrégation", "en": "Re-rolling"},
    "refresh.none": {
        "fr": "Agrégats à jour : rien à réagréger.",
        "en": "Rollups up to date: nothing to re-roll.",
    },
    "refresh.done": {
        "fr": "{cleared} plage(s) périmée(s) réagrégée(s) en {seconds} s ; {left} en attente.",
        "en": "{cleared} stale span(s) re-rolled in {seconds} s; {left} pending.",
    },
}

#: Kinds of index channels (what has a consumption).
CONSUMPTION_KINDS = ("electricity", "cold_water", "hot_water", "gas", "heat", "other")


def message(lang: Lang, key: str, **values: object) -> str:
    """Return the catalogue string ``key`` in ``lang``, formatted with ``values``."""
    return MESSAGES[key][lang].format(**values)


# ----------------------------------------------------------------------------- pure formatting


def format_quantity(value: float, lang: Lang, decimals: int = 0) -> str:
    """``12 345,6`` in French, ``12,345.6`` in English (``decimals`` after the point)."""
    text = f"{value:,.{decimals}f}"
    if lang == "fr":
        return text.replace(",", " ").replace(".", ",")
    return text


def _scaled(value: float, unit: str | None) -> tuple[float, str, int]:
    """Show Wh as kWh and L as m³, as the bills do."""
    if unit == "Wh":
        return value / 1000, "kWh", 1
    if unit == "L":
        return value / 1000, "m³", 2
    return value, unit or "", 1


def parse_period_bound(text: str, *, end: bool) -> date:
    """Return the day a ``--from``/``--to`` value names (:class:`ValueError` if none).

    ``2024-03-15`` is that day; ``2024-03`` is the month's first day, or with ``end`` its
    last day (``--to 2024-12`` includes December).
    """
    text = text.strip()
    if len(text) == 7:
        year, month = (int(part) for part in text.split("-"))
        first = date(year, month, 1)
        if not end:
            return first
        following = date(year + month // 12, month % 12 + 1, 1)
        return following - timedelta(days=1)
    return date.fromisoformat(text)


# ----------------------------------------------------------------------------- plumbing


def _error_line(lang: Lang, error: WeshError) -> str:
    return message(lang, "error", error=error)


_common = common_options(_error_line)


def _shown_url(engine: Engine) -> str:
    from wesh.hq.db import redact  # noqa: PLC0415

    return redact(engine.url)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def hq() -> None:
    """Headquarters store: schema, inventory, gateway configs, consumption, alerts, purge."""


hq.add_command(alerts)


# ----------------------------------------------------------------------------- init


@hq.command()
@_common
def init(*, db: str | None, lang: Lang) -> None:
    """Create the database schema, or upgrade it to this version of wesh."""
    from wesh.hq.migrate import migrate  # noqa: PLC0415

    engine = open_engine(db)
    try:
        revision = migrate(engine)
        click.echo(message(lang, "init.done", url=_shown_url(engine), revision=revision))
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- import


@hq.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the counts and problems as JSON.")
@_common
def import_(*, file: Path, as_json: bool, db: str | None, lang: Lang) -> None:
    """Load patrimony and equipment from FILE (.csv or .toml), creating or updating.

    Every bad record is reported with its line and every good one is applied; the exit
    status is 1 when some record was refused.
    """
    from wesh.hq.inventory import RECORDS, import_inventory  # noqa: PLC0415
    from wesh.hq.migrate import migrate  # noqa: PLC0415

    engine = open_engine(db)
    try:
        migrate(engine)
        result = import_inventory(engine, file)
    finally:
        engine.dispose()
    if as_json:
        click.echo(
            dump_json(
                {
                    "file": str(file),
                    "created": dict(result.created),
                    "updated": dict(result.updated),
                    "unchanged": dict(result.unchanged),
                    "errors": [
                        {"where": error.where, "message": error.message} for error in result.errors
                    ],
                }
            )
        )
    else:
        click.echo(
            message(
                lang,
                "import.done",
                file=file.name,
                applied=result.applied,
                created=sum(result.created.values()),
                updated=sum(result.updated.values()),
                unchanged=sum(result.unchanged.values()),
            )
        )
        for kind in RECORDS:
            counts = (result.created[kind], result.updated[kind], result.unchanged[kind])
            if any(counts):
                name = message(lang, f"record.{kind}")
                created, updated, unchanged = counts
                click.echo(
                    message(
                        lang,
                        "import.kind",
                        kind=name,
                        created=created,
                        updated=updated,
                        unchanged=unchanged,
                    )
                )
        if result.errors:
            click.echo(message(lang, "import.problems", count=len(result.errors)), err=True)
            for error in result.errors:
                click.echo(f"  {error.where}: {error.message}", err=True)
    if result.errors:
        sys.exit(1)


# ----------------------------------------------------------------------------- export


@hq.command("export-gateway-config")
@click.argument("site")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (default: standard output).",
)
@_common
def export_gateway_config(*, site: str, output: Path | None, db: str | None, lang: Lang) -> None:
    """Write the weshd configuration (TOML) of SITE from the inventory."""
    from wesh.hq.gateway_export import export_gateway_config as export  # noqa: PLC0415

    engine = open_engine(db)
    try:
        text = export(engine, site)
    finally:
        engine.dispose()
    if output is None:
        click.echo(text, nl=False)
        return
    _write_atomically(output, text)
    boxes = text.count("\n[[boxes]]\n")
    click.echo(message(lang, "export.written", site=site, path=output, boxes=boxes), err=True)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror}", where=str(path)) from exc


# ----------------------------------------------------------------------------- generate


@hq.command()
@click.option("--buildings", type=int, default=100, show_default=True, help="Buildings.")
@click.option("--flats", type=int, default=40, show_default=True, help="Dwellings a building.")
@click.option("--days", type=int, default=365, show_default=True, help="Days of data.")
@click.option(
    "--raw-days",
    type=int,
    default=31,
    show_default=True,
    help="The last days with hourly readings (before: daily rollups only).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--end", "end_text", help="Last day generated (YYYY-MM-DD; default yesterday).")
@_common
def generate(
    *,
    buildings: int,
    flats: int,
    days: int,
    raw_days: int,
    seed: int,
    end_text: str | None,
    db: str | None,
    lang: Lang,
) -> None:
    """Fill the database with a realistic estate and a year of readings (benchmarks, demo)."""
    from rich.progress import Progress  # noqa: PLC0415

    from wesh.hq.generate import GenerateOptions  # noqa: PLC0415
    from wesh.hq.generate import generate as run  # noqa: PLC0415
    from wesh.hq.timeutil import paris_day  # noqa: PLC0415

    if end_text is None:
        end = paris_day(datetime.now(UTC)) - timedelta(days=1)
    else:
        try:
            end = date.fromisoformat(end_text)
        except ValueError:
            raise click.BadParameter(message(lang, "bad_bound", text=end_text)) from None
    options = GenerateOptions(
        end=end, buildings=buildings, flats=flats, days=days, raw_days=raw_days, seed=seed
    )
    options.check()
    engine = open_engine(db)
    raw_from = end - timedelta(days=raw_days - 1) if raw_days else end + timedelta(days=1)
    click.echo(
        message(
            lang,
            "generate.start",
            buildings=buildings,
            first=options.first,
            end=end,
            raw_from=raw_from,
            url=_shown_url(engine),
        ),
        err=True,
    )
    started = time.perf_counter()
    try:
        with Progress(*_progress_columns(), transient=False) as progress:
            task = progress.add_task(message(lang, "generate.task"), total=buildings)
            report = run(
                engine,
                options,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    click.echo(
        message(
            lang,
            "generate.done",
            seconds=format_quantity(seconds, lang, 1),
            buildings=format_quantity(report.buildings, lang),
            boxes=format_quantity(report.boxes, lang),
            channels=format_quantity(report.channels, lang),
            readings=format_quantity(report.readings, lang),
            hours=format_quantity(report.rollup_hour, lang),
            days=format_quantity(report.rollup_day, lang),
            rate=format_quantity(report.rows / max(seconds, 1e-9), lang),
            replacements=format_quantity(report.meter_replacements, lang),
        )
    )


# ----------------------------------------------------------------------------- purge-tenancies


@hq.command("purge-tenancies")
@click.option(
    "--ended-before",
    "ended_before_text",
    metavar="DATE",
    help="Purge the leases whose last day is before DATE (YYYY-MM-DD).",
)
@click.option(
    "--grace",
    type=click.IntRange(min=0),
    help="Purge the leases that ended more than DAYS days ago (default 365).",
    metavar="DAYS",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_common
def purge_tenancies(
    *,
    ended_before_text: str | None,
    grace: int | None,
    dry_run: bool,
    as_json: bool,
    db: str | None,
    lang: Lang,
) -> None:
    """Delete the detailed data of ended leases; keep the daily rollups.

    For every lease that ended before the cutoff and is not purged yet, deletes the raw
    readings and hourly rollups of the dwelling's channels over the lease, except where
    another, still-kept lease of the dwelling covers the same days. Daily rollups (charge
    settlement) and each index channel's move-out index stay. Safe to interrupt and rerun.
    """
    from wesh.hq.purge import DEFAULT_GRACE_DAYS, cutoff_for_grace  # noqa: PLC0415
    from wesh.hq.purge import purge_tenancies as run  # noqa: PLC0415
    from wesh.hq.timeutil import paris_day  # noqa: PLC0415

    if ended_before_text is not None and grace is not None:
        raise click.UsageError(message(lang, "purge.cutoff_or_grace"))
    now = datetime.now(UTC)
    if ended_before_text is not None:
        try:
            cutoff = date.fromisoformat(ended_before_text.strip())
        except ValueError:
            raise click.BadParameter(message(lang, "bad_day", text=ended_before_text)) from None
    else:
        days = DEFAULT_GRACE_DAYS if grace is None else grace
        cutoff = cutoff_for_grace(paris_day(now), days)
    engine = open_engine(db)
    try:
        with _progress_bar(message(lang, "purge.task")) as advance:
            report = run(engine, cutoff=cutoff, now=now, dry_run=dry_run, progress=advance)
    finally:
        engine.dispose()
    if as_json:
        click.echo(dump_json(report.as_dict()))
        return
    if not report.dwellings:
        click.echo(message(lang, "purge.none", cutoff=cutoff))
        return
    for item in report.dwellings:
        periods = ", ".join(
            f"{span['first_day']} → {span['last_day']}" for span in item.as_dict()["spans"]
        )
        click.echo(
            message(
                lang,
                "purge.dwelling",
                dwelling=item.dwelling,
                periods=periods or "—",
                readings=format_quantity(item.readings, lang),
                hours=format_quantity(item.hours, lang),
            )
        )
    click.echo(
        message(
            lang,
            "purge.dry" if dry_run else "purge.done",
            tenancies=report.tenancies,
            cutoff=cutoff,
            dwellings=len(report.dwellings),
            readings=format_quantity(report.readings, lang),
            hours=format_quantity(report.hours, lang),
            days=format_quantity(report.kept_days, lang),
            kept=format_quantity(report.kept_readings, lang),
        )
    )


# ----------------------------------------------------------------------------- refresh


@hq.command()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@_common
def refresh(*, as_json: bool, db: str | None, lang: Lang) -> None:
    """Re-roll every stale rollup span now (for cron, or after a bulk import)."""
    from wesh.hq.rollups import REFRESH_BATCH, refresh_rollups  # noqa: PLC0415

    engine = open_engine(db)
    started = time.perf_counter()
    try:
        pending = _stale_spans(engine)
        cleared = 0
        with _progress_bar(message(lang, "refresh.task"), shown=pending > 0) as advance:
            advance(0, pending)
            while cleared < pending:
                done = refresh_rollups(engine, limit=REFRESH_BATCH)
                if not done:
                    break
                cleared += done
                advance(cleared, max(pending, cleared))
        left = _stale_spans(engine)
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    if as_json:
        summary = {
            "pending_before": pending,
            "refreshed": cleared,
            "pending_after": left,
            "seconds": round(seconds, 3),
        }
        click.echo(dump_json(summary))
    elif not cleared:
        click.echo(message(lang, "refresh.none"))
    else:
        click.echo(
            message(
                lang,
                "refresh.done",
                cleared=format_quantity(cleared, lang),
                seconds=format_quantity(seconds, lang, 1),
                left=format_quantity(left, lang),
            )
        )


def _stale_spans(engine: Engine) -> int:
    """Return how many stale spans (``rollup_dirty`` rows) wait for a re-roll."""
    from sqlalchemy import func, select  # noqa: PLC0415

    from wesh.hq.db import transaction  # noqa: PLC0415
    from wesh.hq.models import RollupDirty  # noqa: PLC0415

    with transaction(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(RollupDirty)).scalar_one())


def _progress_columns() -> tuple[ProgressColumn, ...]:
    """Return the columns of a progress bar: task, bar, done/total, elapsed, remaining."""
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


@contextlib.contextmanager
def _progress_bar(description: str, *, shown: bool = True) -> Iterator[Callable[[int, int], None]]:
    """Yield ``advance(done, total)`` drawing a bar on standard error when it is a terminal."""
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import Progress  # noqa: PLC0415

    console = Console(stderr=True)
    with Progress(
        *_progress_columns(), console=console, disable=not (shown and console.is_terminal)
    ) as progress:
        task = progress.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


# ----------------------------------------------------------------------------- consumption


@hq.command()
@click.option("--dwelling", help="A dwelling's code (e.g. B001-L12).")
@click.option("--building", help="A building's code (e.g. B001).")
@click.option("--residence", help="A residence's code (e.g. R01).")
@click.option("--kind", type=click.Choice(CONSUMPTION_KINDS), help="One kind (default: all).")
@click.option("--from", "start_text", required=True, help="First day: YYYY-MM-DD or YYYY-MM.")
@click.option("--to", "end_text", required=True, help="Last day, included: YYYY-MM-DD or YYYY-MM.")
@click.option(
    "--by",
    type=click.Choice(["hour", "day", "month"]),
    default="month",
    show_default=True,
    help="Bucket size.",
)
@click.option(
    "--compare-previous-year", is_flag=True, help="Each day or month beside a year earlier."
)
@click.option("--per-m2", is_flag=True, help="A building's dwellings per m² of their surface.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (raw units: Wh, L).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (raw units: Wh, L).")
@_common
def consumption(
    *,
    dwelling: str | None,
    building: str | None,
    residence: str | None,
    kind: str | None,
    start_text: str,
    end_text: str,
    by: str,
    compare_previous_year: bool,
    per_m2: bool,
    as_json: bool,
    as_csv: bool,
    db: str | None,
    lang: Lang,
) -> None:
    """Consumption of a dwelling, building or residence per hour, day or month."""
    scopes = {"dwelling": dwelling, "building": building, "residence": residence}
    given = [(level, code) for level, code in scopes.items() if code is not None]
    if len(given) != 1:
        raise click.UsageError(message(lang, "one_subject"))
    if as_json and as_csv:
        raise click.UsageError(message(lang, "json_or_csv"))
    if compare_previous_year and per_m2:
        raise click.UsageError(message(lang, "compare_or_per_m2"))
    if per_m2 and building is None:
        raise click.UsageError(message(lang, "per_m2_building"))
    if compare_previous_year and by == "hour":
        raise click.UsageError(message(lang, "compare_by"))
    try:
        first = parse_period_bound(start_text, end=False)
    except ValueError:
        raise click.BadParameter(message(lang, "bad_bound", text=start_text)) from None
    try:
        last = parse_period_bound(end_text, end=True)
    except ValueError:
        raise click.BadParameter(message(lang, "bad_bound", text=end_text)) from None
    if last < first:
        raise click.UsageError(message(lang, "bad_range", to=last, start=first))
    query = _ConsumptionQuery(
        level=given[0][0], code=given[0][1], kind=kind, first=first, last=last, by=by
    )
    engine = open_engine(db)
    try:
        if compare_previous_year:
            rows = _compare(engine, query)
        elif per_m2:
            rows = _per_m2(engine, query)
        else:
            rows = _plain(engine, query)
    finally:
        engine.dispose()
    if as_json:
        click.echo(dump_json({**query.as_dict(), "rows": rows}))
    elif as_csv:
        click.echo(_to_csv(rows), nl=False)
    elif compare_previous_year:
        _print_comparison(query, rows, lang)
    else:
        _print_pivot(query, rows, lang, per_m2=per_m2)


@dataclass(frozen=True, slots=True)
class _ConsumptionQuery:
    level: str
    code: str
    kind: str | None
    first: date
    last: date  # included
    by: str

    def scope(self) -> dict[str, Any]:
        return {self.level: self.code, "kind": self.kind}

    def as_dict(self) -> dict[str, Any]:
        return {
            self.level: self.code,
            "kind": self.kind,
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "by": self.by,
        }


def _plain(engine: Engine, query: _ConsumptionQuery) -> list[dict[str, Any]]:
    from wesh.hq.queries import consumption as run  # noqa: PLC0415

    end = query.last + timedelta(days=1)
    found = run(engine, **query.scope(), start=query.first, end=end, by=query.by)  # type: ignore[arg-type]
    return [row.as_dict() for row in found]


def _compare(engine: Engine, query: _ConsumptionQuery) -> list[dict[str, Any]]:
    from wesh.hq.queries import previous_year  # noqa: PLC0415

    end = query.last + timedelta(days=1)
    found = previous_year(engine, **query.scope(), start=query.first, end=end, by=query.by)  # type: ignore[arg-type]
    return [row.as_dict() for row in found]


def _per_m2(engine: Engine, query: _ConsumptionQuery) -> list[dict[str, Any]]:
    from wesh.hq.queries import building_average_per_m2  # noqa: PLC0415

    end = query.last + timedelta(days=1)
    found = building_average_per_m2(
        engine,
        building=query.code,
        kind=query.kind,
        start=query.first,
        end=end,
        by=query.by,  # type: ignore[arg-type]
    )
    return [row.as_dict() for row in found]


def _series_title(kind: str, unit: str | None, lang: Lang, *, per_m2: bool = False) -> str:
    name = message(lang, f"kind.{kind}") if f"kind.{kind}" in MESSAGES else kind
    shown = _scaled(0.0, unit)[1]
    if per_m2:
        shown = f"{shown}/m²"
    return f"{name} ({shown})" if shown else name


def _cell(value: float | None, unit: str | None, lang: Lang, *, per_m2: bool = False) -> str:
    if value is None:
        return "—"
    scaled, _, decimals = _scaled(value, unit)
    return format_quantity(scaled, lang, decimals + (2 if per_m2 else 0))


def _title(query: _ConsumptionQuery, lang: Lang) -> str:
    subject = message(lang, f"subject.{query.level}", code=query.code)
    return message(lang, "title.consumption", subject=subject, start=query.first, end=query.last)


def _print_pivot(
    query: _ConsumptionQuery, rows: list[dict[str, Any]], lang: Lang, *, per_m2: bool
) -> None:
    from rich.table import Table  # noqa: PLC0415

    subject = message(lang, f"subject.{query.level}", code=query.code)
    series = sorted(
        dict.fromkeys((row["kind"], row["unit"]) for row in rows),
        key=lambda item: (_kind_order(item[0]), item[1] or ""),
    )
    if not series:
        click.echo(message(lang, "none.consumption", subject=subject))
        return
    key = "value_per_m2" if per_m2 else "value"
    periods = list(dict.fromkeys(row["label"] for row in rows))
    values = {(row["kind"], row["unit"], row["label"]): row[key] for row in rows}
    click.echo(_title(query, lang))
    table = Table()
    table.add_column(message(lang, "col.period"))
    for kind, unit in series:
        table.add_column(_series_title(kind, unit, lang, per_m2=per_m2), justify="right")
    for period in periods:
        cells = [values.get((kind, unit, period)) for kind, unit in series]
        table.add_row(
            period,
            *(_cell(v, u, lang, per_m2=per_m2) for v, (_, u) in zip(cells, series, strict=True)),
        )
    totals = []
    for kind, unit in series:
        known = [values[kind, unit, p] for p in periods if values.get((kind, unit, p)) is not None]
        totals.append(_cell(sum(known), unit, lang, per_m2=per_m2) if known else "—")
    table.add_section()
    table.add_row(message(lang, "total"), *totals)
    new_console().print(table)
    if per_m2 and rows:
        first = rows[0]
        click.echo(
            message(
                lang,
                "surface",
                surface=format_quantity(first["surface_m2"], lang, 1),
                dwellings=first["dwellings"],
            )
        )


def _print_comparison(query: _ConsumptionQuery, rows: list[dict[str, Any]], lang: Lang) -> None:
    from rich.table import Table  # noqa: PLC0415

    if not rows:
        subject = message(lang, f"subject.{query.level}", code=query.code)
        click.echo(message(lang, "none.consumption", subject=subject))
        return
    click.echo(_title(query, lang))
    table = Table()
    for key in ("col.period", "col.kind", "col.consumption", "col.previous", "col.change"):
        table.add_column(
            message(lang, key), justify="left" if key in ("col.period", "col.kind") else "right"
        )
    for row in rows:
        change = row["change_pct"]
        table.add_row(
            row["label"],
            _series_title(row["kind"], row["unit"], lang),
            _cell(row["value"], row["unit"], lang),
            _cell(row["previous"], row["unit"], lang),
            "—"
            if change is None
            else f"{'+' if change > 0 else ''}{format_quantity(change, lang, 1)} %",
        )
    new_console().print(table)


def _kind_order(kind: str) -> int:
    return CONSUMPTION_KINDS.index(kind) if kind in CONSUMPTION_KINDS else len(CONSUMPTION_KINDS)


def _to_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
