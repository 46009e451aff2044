"""What a new box's SD card holds: the stock template, a few web pages, the log folder.

The files are the same for every box of a firmware family, built once and shared
(``bytes`` are immutable). Pages are minimal stand-ins for the vendor's web UI (wes.md
§2.2): enough for the admin probe (``/INFOCFG.HTM`` gives 403 to the user account) and
for the vendor-style AJAX data pages read by some clients (``/WEBPROG/CGX/PCEVAL.CGX``,
``/WEBPROG/CGX/INFOCFG.CGX``; markup [I], only the value strings are known, §2.7).
"""

from __future__ import annotations

from functools import cache

from wesh.sim.model import Firmware
from wesh.sim.sdcard import SdCard
from wesh.wes.cgx import stock_template
from wesh.wes.csvlog import LOG_ROOT

__all__ = ["install_site", "site_files"]

_PAGES = {
    "index.htm": "Serveur W.E.S.",
    "INFOCFG.HTM": "Informations",
    "RELAIS.HTM": "Relais, entrées, analogiques",
    "PULSES.HTM": "Compteurs d'impulsions",
    "PCEVAL.HTM": "Pinces ampèremétriques",
    "TMP.HTM": "Températures",
    "TICVAL.HTM": "Téléinfo",
}


def _page(title: str) -> bytes:
    return (
        f"<html><head><title>W.E.S. - {title}</title></head>\n"
        f"<body><h1>{title}</h1><p>Serveur W.E.S. simulé (wesh).</p></body></html>\n"
    ).encode("latin-1")


def _infocfg() -> str:
    return "\n".join(
        [
            "# Server information (vendor AJAX convention, markup inferred)",
            "t <form>",
            "t <text><id>hwversion</id>",
            "c v h <value>%s</value>",
            "t </text>",
            "t <text><id>swversion</id>",
            "c v v <value>%s</value>",
            "t </text>",
            "t <text><id>mac</id>",
            "c r a <value>%02X:%02X:%02X:%02X:%02X:%02X</value>",
            "t </text>",
            "t </form>",
            ".",
            "",
        ]
    )


def _pceval(firmware: Firmware) -> str:
    index = "%.03f kWh" if firmware is Firmware.V084A10 else "%d Wh"
    lines = ["# Clamp values (vendor AJAX convention, markup inferred)", "t <form>"]
    for n in range(1, 5):
        lines += [
            f"t <html><id>pceI{n}</id>",
            f"c P A{n} <value>%.02f A</value>",
            "t </html>",
            f"t <html><id>pceP{n}</id>",
            f"c PPU{n} <value>%s</value>",
            "t </html>",
            f"t <html><id>pceW{n}</id>",
            f"c P W{n} <value>{index}</value>",
            "t </html>",
        ]
    lines += ["t </form>", ".", ""]
    return "\n".join(lines)


@cache
def site_files(firmware: Firmware) -> tuple[tuple[str, bytes], ...]:
    """Return ``(path, content)`` of every file of a new card (cached per firmware)."""
    files = [("/DATA.CGX", stock_template(firmware).encode("latin-1"))]
    files += [(f"/{name}", _page(title)) for name, title in _PAGES.items()]
    files.append(("/WEBPROG/CGX/INFOCFG.CGX", _infocfg().encode("latin-1")))
    files.append(("/WEBPROG/CGX/PCEVAL.CGX", _pceval(firmware).encode("latin-1")))
    return tuple(files)


def install_site(card: SdCard, firmware: Firmware, *, mtime: float) -> None:
    """Fill a new card with the site of ``firmware`` and an empty log folder."""
    for path, data in site_files(firmware):
        card.write(path, data, mtime=mtime)
    card.mkdir(LOG_ROOT, exist_ok=True, mtime=mtime)
