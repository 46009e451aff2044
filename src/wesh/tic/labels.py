"""The TIC label catalogue: one declarative table per mode.

Every label of the Enedis specifications is described once, with its meaning (English
and French), unit, kind of value, fixed width and the flags of the spec tables:

* historique mode (CBE meters and Linky in historique): [02E §2.2-2.5], [54E §6.1];
* standard mode (Linky only): [54E §6.2.2], columns H (horodated), T (three-phase
  only) and P (producer only).

``[02E]`` is *ERDF-NOI-CPT_02E* v4 (2010), ``[54E]`` is *Enedis-NOI-CPT_54E* v3 (2018);
see ``docs/tic-labels.md`` and the project's TIC reference note. Labels seen in the field
but absent from the spec are catalogued too, with ``deviation=True`` and, when they
stand for a spec label, ``alias_of`` naming it.

The catalogue drives :func:`wesh.tic.values.decode_value` (which decoder, which width,
whether a horodate is required) and :mod:`wesh.tic.meter` (which labels are energy
registers, per-phase values, producer or three-phase evidence).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol, TypedDict, Unpack

from wesh.tic.model import Mode

__all__ = [
    "HISTORIQUE_LABELS",
    "STANDARD_LABELS",
    "Kind",
    "LabelInfo",
    "Unit",
    "catalogue",
    "lookup",
]


class Unit(StrEnum):
    """Unit of a TIC value; never transmitted, implied by the label."""

    WH = "Wh"
    VARH = "VArh"
    A = "A"
    V = "V"
    VA = "VA"
    W = "W"
    KVA = "kVA"
    MIN = "min"
    DAL = "daL"
    NONE = ""


class Kind(StrEnum):
    """What a label's data is, which selects its decoder in :mod:`wesh.tic.values`."""

    INDEX = "index"  # energy register, int Wh or VArh
    COUNTER = "counter"  # gas / other meter index of a concentrator, int daL
    CURRENT = "current"  # int A
    VOLTAGE = "voltage"  # int V
    POWER = "power"  # int VA, W or kVA
    INTEGER = "integer"  # other int (minutes, numbers, version)
    IDENTITY = "identity"  # ADCO / ADSC meter serial
    TARIFF_OPTION = "tariff_option"  # OPTARIF
    TARIFF_PERIOD = "tariff_period"  # PTEC
    COLOUR = "colour"  # DEMAIN (Tempo)
    TEXT = "text"  # free text of fixed maximum width
    STATUS = "status"  # STGE 32-bit status register
    STATUS_WORD = "status_word"  # MOTDETAT, reserved to the distributor
    PHASES = "phases"  # PPOT potentials presence
    RELAYS = "relays"  # RELAIS
    PROFILE = "profile"  # PJOURF+1 / PPOINTE day profile
    TIMESTAMP = "timestamp"  # DATE (the value is the horodate)
    MOBILE_PEAK = "mobile_peak"  # DPMx / FPMx (horodate with season space, data 00)


@dataclass(frozen=True, slots=True)
class LabelInfo:
    """What the specification says about one label in one mode.

    ``width`` is the number of data characters per spec (``None`` when variable);
    numbers are decoded in ``unit``. ``phase`` is 1..3 for per-phase labels.
    ``number`` is the register, message or peak number for numbered families
    (EASF01 → 1, ERQ3 → 3, DPM2 → 2, MSG1 → 1). ``index_name`` names an energy
    register (``"Tempo HC Blue"``); ``index_name_fr`` is its French name.
    ``single_phase_only`` / ``three_phase_only`` / ``producer_only`` say which meters
    send the label. ``deviation`` marks a label seen in the field but not in the spec;
    ``alias_of`` names the spec label it stands for. ``source`` cites the document.
    """

    label: str
    mode: Mode
    meaning: str
    meaning_fr: str
    unit: Unit
    kind: Kind
    width: int | None
    horodated: bool = False
    three_phase_only: bool = False
    single_phase_only: bool = False
    producer_only: bool = False
    phase: int | None = None
    number: int | None = None
    index_name: str | None = None
    index_name_fr: str | None = None
    deviation: bool = False
    alias_of: str | None = None
    source: str = ""
    note: str = ""

    @property
    def is_energy_index(self) -> bool:
        """True for an energy register (Wh or VArh)."""
        return self.kind is Kind.INDEX


class _PhaseFlags(TypedDict, total=False):
    horodated: bool
    single_phase_only: bool
    producer_only: bool
    number: int
    index_name: str
    index_name_fr: str
    deviation: bool
    alias_of: str
    source: str
    note: str


class _Flags(_PhaseFlags, total=False):
    three_phase_only: bool
    phase: int


class _Maker(Protocol):
    def __call__(
        self,
        label: str,
        kind: Kind,
        width: int | None,
        unit: Unit,
        *,
        en: str,
        fr: str,
        **flags: Unpack[_Flags],
    ) -> LabelInfo: ...


def _hist(
    label: str,
    kind: Kind,
    width: int | None,
    unit: Unit,
    *,
    en: str,
    fr: str,
    **flags: Unpack[_Flags],
) -> LabelInfo:
    return LabelInfo(label, Mode.HISTORIQUE, en, fr, unit, kind, width, **flags)


def _std(
    label: str,
    kind: Kind,
    width: int | None,
    unit: Unit,
    *,
    en: str,
    fr: str,
    **flags: Unpack[_Flags],
) -> LabelInfo:
    return LabelInfo(label, Mode.STANDARD, en, fr, unit, kind, width, **flags)


def _phases(
    make: _Maker,
    pattern: str,
    kind: Kind,
    width: int,
    unit: Unit,
    *,
    en: str,
    fr: str,
    tri_from: int = 1,
    **flags: Unpack[_PhaseFlags],
) -> list[LabelInfo]:
    """Expand ``pattern`` (with ``{n}``) over phases 1..3; phases >= ``tri_from`` are tri-only.

    ``tri_from`` is 2 for labels whose phase-1 variant single-phase meters send too
    (IRMS1, URMS1, UMOY1) and 1 (every phase three-phase only) otherwise.
    """
    return [
        make(
            pattern.format(n=n),
            kind,
            width,
            unit,
            en=f"{en}, phase {n}",
            fr=f"{fr}, phase {n}",
            phase=n,
            three_phase_only=n >= tri_from,
            **flags,
        )
        for n in (1, 2, 3)
    ]


_NONE = Unit.NONE
_02E = "[02E §2.3]"
_02E_TRI = "[02E §2.5]; [54E §6.1.2]"
_TEMPO = (  # label, index name, French index name: HC/HP x Bleu (B), Blanc (W), Rouge (R)
    ("BBRHCJB", "HC Blue", "HC jours Bleus"),
    ("BBRHPJB", "HP Blue", "HP jours Bleus"),
    ("BBRHCJW", "HC White", "HC jours Blancs"),
    ("BBRHPJW", "HP White", "HP jours Blancs"),
    ("BBRHCJR", "HC Red", "HC jours Rouges"),
    ("BBRHPJR", "HP Red", "HP jours Rouges"),
)

# fmt: off
_HISTORIQUE: list[LabelInfo] = [
    _hist("ADCO", Kind.IDENTITY, 12, _NONE, en="meter address (serial, ADS)",
          fr="adresse du compteur (ADS)", source="[02E §2.3]; [54E §2.2]"),
    _hist("OPTARIF", Kind.TARIFF_OPTION, 4, _NONE, en="tariff option", fr="option tarifaire",
          source=_02E),
    _hist("ISOUSC", Kind.CURRENT, 2, Unit.A, en="subscribed current", fr="intensité souscrite",
          source=_02E, note="Linky: PREF/200 V (mono), PREF/3/200 V (tri) [54E §6.1]"),
    _hist("BASE", Kind.INDEX, 9, Unit.WH, en="energy index, Base option",
          fr="index option Base", index_name="Base", index_name_fr="Base", source=_02E,
          note="Linky with a non-historical contract: totaliser index; concentrator: 8 chars"),
    _hist("HCHC", Kind.INDEX, 9, Unit.WH, en="energy index, off-peak hours",
          fr="index heures creuses", index_name="HC", index_name_fr="Heures creuses",
          source=_02E),
    _hist("HCHP", Kind.INDEX, 9, Unit.WH, en="energy index, peak hours",
          fr="index heures pleines", index_name="HP", index_name_fr="Heures pleines",
          source=_02E),
    _hist("EJPHN", Kind.INDEX, 9, Unit.WH, en="energy index, EJP normal hours",
          fr="index EJP heures normales", index_name="EJP normal",
          index_name_fr="EJP heures normales", source=_02E),
    _hist("EJPHPM", Kind.INDEX, 9, Unit.WH, en="energy index, EJP mobile-peak hours",
          fr="index EJP heures de pointe mobile", index_name="EJP peak",
          index_name_fr="EJP heures de pointe mobile", source=_02E),
    *(
        _hist(label, Kind.INDEX, 9, Unit.WH, en=f"energy index, Tempo {name}",
              fr=f"index Tempo {name_fr}", index_name=f"Tempo {name}",
              index_name_fr=f"Tempo {name_fr}", source=_02E,
              note="Linky in historique: supplier indexes 1-6")
        for label, name, name_fr in _TEMPO
    ),
    _hist("PEJP", Kind.INTEGER, 2, Unit.MIN, en="EJP mobile-peak notice",
          fr="préavis début EJP", source=_02E,
          note="always 30; only during the notice and the peak, EJP option only"),
    _hist("PTEC", Kind.TARIFF_PERIOD, 4, _NONE, en="current tariff period",
          fr="période tarifaire en cours", source=_02E),
    _hist("DEMAIN", Kind.COLOUR, 4, _NONE, en="tomorrow's Tempo colour",
          fr="couleur du lendemain (Tempo)", source=_02E),
    _hist("IINST", Kind.CURRENT, 3, Unit.A, en="instantaneous current",
          fr="intensité instantanée", single_phase_only=True, source=_02E),
    *_phases(_hist, "IINST{n}", Kind.CURRENT, 3, Unit.A, en="instantaneous current",
             fr="intensité instantanée", source=_02E_TRI, note="± 0.5 A"),
    _hist("ADPS", Kind.CURRENT, 3, Unit.A, en="overload warning (current above subscribed)",
          fr="avertissement de dépassement de puissance souscrite", single_phase_only=True,
          source=_02E, note="sent only while exceeding"),
    _hist("IMAX", Kind.CURRENT, 3, Unit.A, en="maximum current drawn",
          fr="intensité maximale appelée", single_phase_only=True, source=_02E,
          note="Linky: 'always 90' per [54E §6.1.1]; 060 also seen on real meters"),
    *_phases(_hist, "IMAX{n}", Kind.CURRENT, 3, Unit.A, en="maximum current drawn",
             fr="intensité maximale appelée", source=_02E_TRI, note="Linky tri: 60"),
    _hist("PMAX", Kind.POWER, 5, Unit.W, en="maximum three-phase power reached",
          fr="puissance maximale triphasée atteinte", three_phase_only=True, source=_02E_TRI,
          note="Linky: Smax (VA) of day n-1; the W/VA inconsistency is in the spec"),
    _hist("PAPP", Kind.POWER, 5, Unit.VA, en="apparent power", fr="puissance apparente",
          source="[02E §2.4]", note="rounded to 10 VA; absent on plain CBEMM"),
    _hist("HHPHC", Kind.TEXT, 1, _NONE, en="peak/off-peak schedule group",
          fr="horaire heures pleines heures creuses", source=_02E,
          note="A, C, D, E, Y; Linky: A; H also seen"),
    _hist("MOTDETAT", Kind.STATUS_WORD, 6, _NONE,
          en="meter status word (reserved to the distributor)", fr="mot d'état du compteur",
          source=_02E),
    _hist("PPOT", Kind.PHASES, 2, _NONE, en="potentials presence",
          fr="présence des potentiels", three_phase_only=True, source=_02E_TRI),
    *_phases(_hist, "ADIR{n}", Kind.CURRENT, 3, Unit.A, en="overload warning",
             fr="avertissement de dépassement d'intensité", source="[02E §2.5.4]",
             note="short frames, only while the phase exceeds"),
    _hist("GAZ", Kind.COUNTER, 7, Unit.DAL, en="gas meter index", fr="index compteur gaz",
          source="[02E §2.2]", note="concentrator only"),
    _hist("AUTRE", Kind.COUNTER, 7, Unit.DAL, en="third meter index",
          fr="index troisième compteur", source="[02E §2.2]", note="concentrator only"),
    # Seen in the field, not in the spec (reference note §3.4).
    _hist("TENSION", Kind.VOLTAGE, 3, Unit.V, en="voltage (non-spec label)",
          fr="tension (étiquette hors spécification)", deviation=True,
          source="arendst/Tasmota PR #10844 (meter model unknown)"),
]

_54E = "[54E §6.2.2]"
_SMAX = "[54E §6.2.3.11]"
_G1 = "hekmon/linkytic PR #43 (Linky G1 pilot, types 67/68) [unconfirmed]"

_STANDARD: list[LabelInfo] = [
    _std("ADSC", Kind.IDENTITY, 12, _NONE, en="secondary address (serial, ADS)",
         fr="adresse secondaire du compteur", source="[54E §6.2.3]; [54E §2.2]"),
    _std("VTIC", Kind.INTEGER, 2, _NONE, en="TIC version", fr="version de la TIC",
         source=_54E, note="02 in v3 of the spec"),
    _std("DATE", Kind.TIMESTAMP, 0, _NONE, en="current date and time",
         fr="date et heure courante", horodated=True, source="[54E §6.2.3.3]",
         note="data field empty; the value is the horodate"),
    _std("NGTF", Kind.TEXT, 16, _NONE, en="supplier tariff calendar name",
         fr="nom du calendrier tarifaire fournisseur", source=_54E),
    _std("LTARF", Kind.TEXT, 16, _NONE, en="current supplier tariff label",
         fr="libellé tarif fournisseur en cours", source=_54E),
    _std("EAST", Kind.INDEX, 9, Unit.WH, en="total active energy drawn",
         fr="énergie active soutirée totale", index_name="total drawn",
         index_name_fr="total soutiré", source=_54E),
    *(
        _std(f"EASF{n:02d}", Kind.INDEX, 9, Unit.WH, en=f"active energy drawn, supplier index {n}",
             fr=f"énergie active soutirée fournisseur, index {n:02d}", number=n,
             index_name=f"supplier {n}", index_name_fr=f"fournisseur {n}", source=_54E)
        for n in range(1, 11)
    ),
    *(
        _std(f"EASD{n:02d}", Kind.INDEX, 9, Unit.WH,
             en=f"active energy drawn, distributor index {n}",
             fr=f"énergie active soutirée distributeur, index {n:02d}", number=n,
             index_name=f"distributor {n}", index_name_fr=f"distributeur {n}", source=_54E)
        for n in range(1, 5)
    ),
    _std("EAIT", Kind.INDEX, 9, Unit.WH, en="total active energy injected",
         fr="énergie active injectée totale", producer_only=True, index_name="total injected",
         index_name_fr="total injecté", source=_54E),
    *(
        _std(f"ERQ{n}", Kind.INDEX, 9, Unit.VARH, en=f"total reactive energy Q{n}",
             fr=f"énergie réactive Q{n} totale", producer_only=True, number=n,
             index_name=f"reactive Q{n}", index_name_fr=f"réactive Q{n}", source=_54E)
        for n in range(1, 5)
    ),
    *_phases(_std, "IRMS{n}", Kind.CURRENT, 3, Unit.A, en="RMS current", fr="courant efficace",
             tri_from=2, source="[54E §6.2.3.7]"),
    *_phases(_std, "URMS{n}", Kind.VOLTAGE, 3, Unit.V, en="RMS voltage", fr="tension efficace",
             tri_from=2, source="[54E §6.2.3.8]"),
    _std("PREF", Kind.POWER, 2, Unit.KVA, en="reference (subscribed) apparent power",
         fr="puissance apparente de référence", source="[54E §6.2.3.9]"),
    _std("PCOUP", Kind.POWER, 2, Unit.KVA, en="cut-off apparent power",
         fr="puissance apparente de coupure", source="[54E §6.2.3.9]"),
    _std("SINSTS", Kind.POWER, 5, Unit.VA, en="instantaneous apparent power drawn",
         fr="puissance apparente instantanée soutirée", source="[54E §6.2.3.10]"),
    *_phases(_std, "SINSTS{n}", Kind.POWER, 5, Unit.VA, en="instantaneous apparent power drawn",
             fr="puissance apparente instantanée soutirée", source="[54E §6.2.3.10]"),
    _std("SMAXSN", Kind.POWER, 5, Unit.VA, en="maximum apparent power drawn today",
         fr="puissance apparente max. soutirée n", horodated=True, source=_SMAX),
    *_phases(_std, "SMAXSN{n}", Kind.POWER, 5, Unit.VA, en="maximum apparent power drawn today",
             fr="puissance apparente max. soutirée n", horodated=True, source=_SMAX),
    _std("SMAXSN-1", Kind.POWER, 5, Unit.VA, en="maximum apparent power drawn yesterday",
         fr="puissance apparente max. soutirée n-1", horodated=True, source=_SMAX),
    *_phases(_std, "SMAXSN{n}-1", Kind.POWER, 5, Unit.VA,
             en="maximum apparent power drawn yesterday",
             fr="puissance apparente max. soutirée n-1", horodated=True, source=_SMAX),
    _std("SINSTI", Kind.POWER, 5, Unit.VA, en="instantaneous apparent power injected",
         fr="puissance apparente instantanée injectée", producer_only=True,
         source="[54E §6.2.3.10]"),
    _std("SMAXIN", Kind.POWER, 5, Unit.VA, en="maximum apparent power injected today",
         fr="puissance apparente max. injectée n", horodated=True, producer_only=True,
         source=_SMAX),
    _std("SMAXIN-1", Kind.POWER, 5, Unit.VA, en="maximum apparent power injected yesterday",
         fr="puissance apparente max. injectée n-1", horodated=True, producer_only=True,
         source=_SMAX),
    _std("CCASN", Kind.POWER, 5, Unit.W, en="load-curve point n, active power drawn",
         fr="point n de la courbe de charge active soutirée", horodated=True,
         source="[54E §6.2.3.12]"),
    _std("CCASN-1", Kind.POWER, 5, Unit.W, en="load-curve point n-1, active power drawn",
         fr="point n-1 de la courbe de charge active soutirée", horodated=True,
         source="[54E §6.2.3.12]"),
    _std("CCAIN", Kind.POWER, 5, Unit.W, en="load-curve point n, active power injected",
         fr="point n de la courbe de charge active injectée", horodated=True,
         producer_only=True, source="[54E §6.2.3.12]"),
    _std("CCAIN-1", Kind.POWER, 5, Unit.W, en="load-curve point n-1, active power injected",
         fr="point n-1 de la courbe de charge active injectée", horodated=True,
         producer_only=True, source="[54E §6.2.3.12]"),
    *_phases(_std, "UMOY{n}", Kind.VOLTAGE, 3, Unit.V, en="mean voltage", fr="tension moyenne",
             tri_from=2, horodated=True, source="[54E §6.2.3.13]"),
    _std("STGE", Kind.STATUS, 8, _NONE, en="status register", fr="registre de statuts",
         source="[54E §6.2.3.14]"),
    *(
        _std(f"{prefix}{n}", Kind.MOBILE_PEAK, 2, _NONE, en=f"{en} of mobile peak {n}",
             fr=f"{fr} de la pointe mobile {n}", horodated=True, number=n,
             source="[54E §6.2.3.15]")
        for n in range(1, 4)
        for prefix, en, fr in (("DPM", "start", "début"), ("FPM", "end", "fin"))
    ),
    _std("MSG1", Kind.TEXT, 32, _NONE, en="short message", fr="message court", number=1,
         source="[54E §6.2.3.16]"),
    _std("MSG2", Kind.TEXT, 16, _NONE, en="ultra-short message", fr="message ultra court",
         number=2, source="[54E §6.2.3.17]", note="sent once, right after MSG1"),
    _std("PRM", Kind.TEXT, 14, _NONE, en="delivery point identifier (PRM)",
         fr="point de référence mesure (PRM)", source="[54E §6.2.3.18]", note="14 digits"),
    _std("RELAIS", Kind.RELAYS, 3, _NONE, en="state of the 8 relays", fr="état des relais",
         source="[54E §6.2.3.19]"),
    _std("NTARF", Kind.INTEGER, 2, _NONE, en="current tariff index number",
         fr="numéro de l'index tarifaire en cours", source="[54E §6.2.3.20]"),
    _std("NJOURF", Kind.INTEGER, 2, _NONE, en="current day number in the supplier calendar",
         fr="numéro du jour en cours du calendrier fournisseur", source="[54E §6.2.3.21]"),
    _std("NJOURF+1", Kind.INTEGER, 2, _NONE, en="next day number in the supplier calendar",
         fr="numéro du prochain jour du calendrier fournisseur", source="[54E §6.2.3.21]"),
    _std("PJOURF+1", Kind.PROFILE, 98, _NONE, en="profile of the next day (supplier calendar)",
         fr="profil du prochain jour du calendrier fournisseur", source="[54E §6.2.3.22]"),
    _std("PPOINTE", Kind.PROFILE, 98, _NONE, en="profile of the next peak day",
         fr="profil du prochain jour de pointe", source="[54E §6.2.3.23]"),
    # Seen in the field, not in the spec (reference note §3.4).
    _std("SINST1", Kind.POWER, 5, Unit.VA, en="instantaneous apparent power drawn (G1 variant)",
         fr="puissance apparente instantanée soutirée (variante G1)", deviation=True,
         alias_of="SINSTS", source=_G1),
    _std("SMAXN", Kind.POWER, 5, Unit.VA, en="maximum apparent power drawn today (G1 variant)",
         fr="puissance apparente max. soutirée n (variante G1)", horodated=True,
         deviation=True, alias_of="SMAXSN", source=_G1),
    _std("SMAXN-1", Kind.POWER, 5, Unit.VA,
         en="maximum apparent power drawn yesterday (G1 variant)",
         fr="puissance apparente max. soutirée n-1 (variante G1)", horodated=True,
         deviation=True, alias_of="SMAXSN-1", source=_G1),
]
# fmt: on


def _index(entries: list[LabelInfo]) -> Mapping[str, LabelInfo]:
    table: dict[str, LabelInfo] = {}
    for info in entries:
        if info.label in table:  # pragma: no cover - guards the tables above
            raise AssertionError(f"duplicate TIC label {info.label}")
        table[info.label] = info
    return MappingProxyType(table)


HISTORIQUE_LABELS: Mapping[str, LabelInfo] = _index(_HISTORIQUE)
"""Every historique-mode label, in spec order."""

STANDARD_LABELS: Mapping[str, LabelInfo] = _index(_STANDARD)
"""Every standard-mode label, in spec order."""


def catalogue(mode: Mode) -> Mapping[str, LabelInfo]:
    """Return the read-only label table of ``mode``, in spec (frame) order."""
    return HISTORIQUE_LABELS if mode is Mode.HISTORIQUE else STANDARD_LABELS


def lookup(label: str, mode: Mode) -> LabelInfo | None:
    """Return what the catalogue knows of ``label`` in ``mode``, or ``None``."""
    return catalogue(mode).get(label)
