"""The fixed texts of the alert mails, in French (the default) and English.

Pure data: :mod:`wesh.hq.alerts.compose` fills these templates (``str.format`` fields in
braces) with escaped values. Every rule name of :data:`wesh.hq.alerts.model.RULES` has a
title in both languages (a test iterates ``RULES``); a rule added later without a title
gets :data:`FALLBACK_TITLE` until someone writes one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

__all__ = [
    "DETAIL_LABELS",
    "FALLBACK_TITLE",
    "KIND_LABELS",
    "LANGS",
    "MONTHS",
    "RULE_TITLES",
    "SEVERITY_LABELS",
    "TEXTS",
    "Lang",
]

Lang = Literal["fr", "en"]
LANGS: Final[tuple[Lang, ...]] = ("fr", "en")

#: A human title per rule: what is wrong, in a manager's words.
RULE_TITLES: Final[Mapping[str, Mapping[Lang, str]]] = {
    "channel_silent": {
        "fr": "Plus aucun relevé d'une voie de mesure",
        "en": "No data from a meter channel",
    },
    "box_silent": {"fr": "Boîtier WES muet", "en": "WES box silent"},
    "gateway_silent": {
        "fr": "Passerelle d'immeuble muette",
        "en": "Building gateway silent",
    },
    "link_silent": {"fr": "Liaison SMS du site muette", "en": "Site SMS link silent"},
    "leak_continuous_flow": {
        "fr": "Fuite d'eau probable : écoulement continu",
        "en": "Probable water leak: continuous flow",
    },
    "leak_night_flow": {
        "fr": "Fuite d'eau probable : débit nocturne élevé",
        "en": "Probable water leak: high night flow",
    },
    "leak_burst": {
        "fr": "Fuite d'eau probable : pic de débit",
        "en": "Probable water leak: sudden burst",
    },
    "frost": {
        "fr": "Risque de gel : température trop basse",
        "en": "Frost risk: temperature too low",
    },
    "overheating": {"fr": "Surchauffe", "en": "Overheating"},
    "humidity_high": {
        "fr": "Humidité élevée (risque de moisissures)",
        "en": "High humidity (mould risk)",
    },
    "hot_water_cold": {
        "fr": "Eau chaude trop froide (risque de légionelle)",
        "en": "Hot water too cold (legionella risk)",
    },
    "consumption_high": {"fr": "Consommation élevée", "en": "High consumption"},
    "consumption_above_average": {
        "fr": "Consommation très supérieure à la moyenne de l'immeuble",
        "en": "Consumption far above the building average",
    },
    "vacant_consumption": {
        "fr": "Consommation dans un logement vacant",
        "en": "Consumption in a vacant dwelling",
    },
    "index_backwards": {
        "fr": "Index de compteur en recul",
        "en": "Meter index going backwards",
    },
    "index_jump": {"fr": "Saut d'index invraisemblable", "en": "Implausible meter index jump"},
    "tic_overload": {
        "fr": "Dépassement de la puissance souscrite (compteur TIC)",
        "en": "Subscribed power exceeded (TIC meter)",
    },
    "tic_status_alarm": {
        "fr": "Alarme du registre d'état du compteur (TIC)",
        "en": "Meter status register alarm (TIC)",
    },
    "queue_backlog": {
        "fr": "File d'attente de la passerelle en retard",
        "en": "Gateway queue backing up",
    },
    "sms_budget_exhausted": {"fr": "Budget SMS épuisé", "en": "SMS budget exhausted"},
    "boxes_down": {"fr": "Boîtiers hors service", "en": "Boxes down"},
}

#: The title of a rule missing from :data:`RULE_TITLES` (``{rule}`` is its name).
FALLBACK_TITLE: Final[Mapping[Lang, str]] = {"fr": "Alerte « {rule} »", "en": "Alert “{rule}”"}

SEVERITY_LABELS: Final[Mapping[str, Mapping[Lang, str]]] = {
    "info": {"fr": "information", "en": "information"},
    "warning": {"fr": "avertissement", "en": "warning"},
    "critical": {"fr": "critique", "en": "critical"},
}

#: Channel kinds of the HQ schema (``wesh.hq.models.CHANNEL_KINDS``).
KIND_LABELS: Final[Mapping[str, Mapping[Lang, str]]] = {
    "electricity": {"fr": "électricité", "en": "electricity"},
    "cold_water": {"fr": "eau froide", "en": "cold water"},
    "hot_water": {"fr": "eau chaude", "en": "hot water"},
    "gas": {"fr": "gaz", "en": "gas"},
    "heat": {"fr": "chaleur", "en": "heat"},
    "temperature": {"fr": "température", "en": "temperature"},
    "humidity": {"fr": "humidité", "en": "humidity"},
    "current": {"fr": "courant", "en": "current"},
    "voltage": {"fr": "tension", "en": "voltage"},
    "power": {"fr": "puissance", "en": "power"},
    "other": {"fr": "autre", "en": "other"},
}

#: Labels of the ``Condition.details`` keys the rules use; other keys are shown as they are.
DETAIL_LABELS: Final[Mapping[str, Mapping[Lang, str]]] = {
    "nights": {"fr": "Nuits consécutives", "en": "Consecutive nights"},
    "hours": {"fr": "Heures", "en": "Hours"},
    "days": {"fr": "Jours", "en": "Days"},
    "silent_h": {"fr": "Silence (heures)", "en": "Silent for (hours)"},
    "last_reading_at": {"fr": "Dernier relevé", "en": "Last reading"},
    "last_seen_at": {"fr": "Dernier contact", "en": "Last contact"},
    "median_l_h": {"fr": "Débit horaire médian (L/h)", "en": "Median hourly flow (L/h)"},
    "min_flow_l_h": {"fr": "Débit minimal (L/h)", "en": "Lowest flow (L/h)"},
    "night_mean_l_h": {"fr": "Débit moyen de nuit (L/h)", "en": "Mean night flow (L/h)"},
    "flow_l_h": {"fr": "Débit (L/h)", "en": "Flow (L/h)"},
    "clear_threshold": {"fr": "Seuil de retour à la normale", "en": "Clear threshold"},
    "window": {"fr": "Fenêtre", "en": "Window"},
    "building_mean": {"fr": "Moyenne de l'immeuble", "en": "Building average"},
    "ratio": {"fr": "Rapport à la moyenne", "en": "Ratio to the average"},
    "surface_m2": {"fr": "Surface (m²)", "en": "Floor area (m²)"},
    "previous": {"fr": "Valeur précédente", "en": "Previous value"},
    "previous_index": {"fr": "Index précédent", "en": "Previous index"},
    "index": {"fr": "Index", "en": "Index"},
    "delta": {"fr": "Écart", "en": "Difference"},
    "boxes_up": {"fr": "Boîtiers en service", "en": "Boxes up"},
    "boxes_down": {"fr": "Boîtiers hors service", "en": "Boxes down"},
    "boxes_total": {"fr": "Boîtiers au total", "en": "Boxes in all"},
    "queue_depth": {"fr": "Profondeur de la file", "en": "Queue depth"},
    "sms_sent_today": {"fr": "SMS envoyés aujourd'hui", "en": "SMS sent today"},
    "sms_budget": {"fr": "Budget SMS quotidien", "en": "Daily SMS budget"},
    "events": {"fr": "Événements", "en": "Events"},
    "message": {"fr": "Message du compteur", "en": "Meter message"},
    "tenancy": {"fr": "Bail", "en": "Tenancy"},
}

MONTHS: Final[Mapping[Lang, tuple[str, ...]]] = {
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}

#: Every other fixed text, by key. ``{...}`` fields are filled by compose.py.
TEXTS: Final[Mapping[Lang, Mapping[str, str]]] = {
    "fr": {
        "subject_fired": "[wesh] {title} — {where}",
        "subject_reminder": "[wesh] Rappel n°{n} : {title} — {where}",
        "subject_escalated": "[wesh] Escalade : {title} — {where}",
        "subject_resolved": "[wesh] Résolu : {title} — {where}",
        "subject_test": "[wesh] Message de test",
        "state_fired": "Nouvelle alerte, déclenchée le {fired}.",
        "state_reminder": ("Rappel n°{n} : l'alerte est toujours active (déclenchée le {fired})."),
        "state_escalated": (
            "Escalade : cette alerte est active depuis le {fired} et personne ne l'a"
            " prise en charge."
        ),
        "state_resolved": "Retour à la normale le {resolved}, après {duration}.",
        "acked": "Prise en charge par {who} le {when}.",
        "not_acked": "Personne ne l'a encore prise en charge.",
        "severity": "Gravité",
        "since": "Depuis le",
        "fired_at": "Déclenchée le",
        "alert": "Alerte",
        "what": "Quoi",
        "where": "Où",
        "values": "Valeurs relevées",
        "value": "Valeur mesurée",
        "last_value": "Dernière valeur mesurée",
        "threshold": "Seuil",
        "agency": "Agence",
        "residence": "Résidence",
        "building": "Bâtiment",
        "dwelling": "Logement",
        "site": "Passerelle (site)",
        "box": "Boîtier",
        "channel": "Voie de mesure",
        "subject_building": "bât. {code}",
        "subject_dwelling": "logt {code}",
        "subject_box": "boîtier {ref}",
        "subject_site": "site {site}",
        "grouped": "Cette alerte couvre aussi {n} élément(s), sans message séparé :",
        "grouped_more": "… et {n} autre(s).",
        "link": "Voir l'alerte",
        "footer": (
            "Message automatique de wesh, merci de ne pas y répondre."
            " Les heures sont celles de Paris."
        ),
        "when": "{day} {month} {year} à {hour:02d} h {minute:02d}",
        "days_hours": "{d} j {h} h",
        "hours_minutes": "{h} h {m:02d} min",
        "minutes": "{m} min",
        "test_intro": (
            "Ce message de test confirme que wesh peut envoyer ses alertes par courriel"
            " à cette adresse."
        ),
        "test_sent": "Envoyé le {when}.",
        "test_heading": "Message de test",
    },
    "en": {
        "subject_fired": "[wesh] {title} — {where}",
        "subject_reminder": "[wesh] Reminder {n}: {title} — {where}",
        "subject_escalated": "[wesh] Escalated: {title} — {where}",
        "subject_resolved": "[wesh] Resolved: {title} — {where}",
        "subject_test": "[wesh] Test message",
        "state_fired": "New alert, fired on {fired}.",
        "state_reminder": "Reminder {n}: the alert is still firing (fired on {fired}).",
        "state_escalated": (
            "Escalated: this alert has been firing since {fired} and nobody has acknowledged it."
        ),
        "state_resolved": "Back to normal on {resolved}, after {duration}.",
        "acked": "Acknowledged by {who} on {when}.",
        "not_acked": "Nobody has acknowledged it yet.",
        "severity": "Severity",
        "since": "Since",
        "fired_at": "Fired on",
        "alert": "Alert",
        "what": "What",
        "where": "Where",
        "values": "Values seen",
        "value": "Measured value",
        "last_value": "Last measured value",
        "threshold": "Threshold",
        "agency": "Agency",
        "residence": "Residence",
        "building": "Building",
        "dwelling": "Dwelling",
        "site": "Gateway (site)",
        "box": "Box",
        "channel": "Channel",
        "subject_building": "bldg {code}",
        "subject_dwelling": "flat {code}",
        "subject_box": "box {ref}",
        "subject_site": "site {site}",
        "grouped": "This alert also covers {n} item(s), without separate messages:",
        "grouped_more": "… and {n} more.",
        "link": "See the alert",
        "footer": "Automatic message from wesh, please do not reply. Times are Paris time.",
        "when": "{day} {month} {year}, {hour:02d}:{minute:02d}",
        "days_hours": "{d} d {h} h",
        "hours_minutes": "{h} h {m:02d} min",
        "minutes": "{m} min",
        "test_intro": (
            "This test message confirms that wesh can send its alerts by e-mail to this address."
        ),
        "test_sent": "Sent on {when}.",
        "test_heading": "Test message",
    },
}
