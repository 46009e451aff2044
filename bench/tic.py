"""TIC decoder throughput against the Python peers ``pyteleinfo`` and ``teleinfo``.

Usage: ``.venv/bin/python bench/tic.py [--quick] [--json]``

The corpus is a mixed stream (historique mono and three-phase, standard mono and
three-phase producer) built with wesh's encoder. Each peer is installed in a private
venv (``bench/.peers/``) and timed in its own process on the subset of frames it can
parse; wesh is timed on exactly the same bytes, interleaved with the peer, in the same
run. Times are CPU seconds of the decoding process (``time.process_time``), so other
work on the shared machine disturbs them less than wall time would; figures are
medians, and the ratio is what counts.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _peers import peer_python
from wesh.tic import Mode, encode_frame
from wesh.tic.decoder import FrameDecoder

CHUNK = 4096


def _hist_mono(rng: random.Random, i: int) -> bytes:
    papp = rng.randrange(200, 6000, 10)
    return encode_frame(
        [
            ("ADCO", "031762120162"),
            ("OPTARIF", "HC.."),
            ("ISOUSC", "30"),
            ("HCHC", f"{12_345_678 + i * 3:09d}"),
            ("HCHP", f"{23_456_789 + i * 5:09d}"),
            ("PTEC", "HP.." if i % 3 else "HC.."),
            ("IINST", f"{papp // 230:03d}"),
            ("IMAX", "090"),
            ("PAPP", f"{papp:05d}"),
            ("HHPHC", "A"),
            ("MOTDETAT", "000000"),
        ],
        mode=Mode.HISTORIQUE,
    )


def _hist_tri(rng: random.Random, i: int) -> bytes:
    currents = [rng.randrange(0, 40) for _ in range(3)]
    return encode_frame(
        [
            ("ADCO", "041776199277"),
            ("OPTARIF", "BASE"),
            ("ISOUSC", "20"),
            ("BASE", f"{45_678_901 + i * 11:09d}"),
            ("PTEC", "TH.."),
            ("IINST1", f"{currents[0]:03d}"),
            ("IINST2", f"{currents[1]:03d}"),
            ("IINST3", f"{currents[2]:03d}"),
            ("IMAX1", "060"),
            ("IMAX2", "060"),
            ("IMAX3", "060"),
            ("PMAX", "08450"),
            ("PAPP", f"{sum(currents) * 230 // 10 * 10:05d}"),
            ("HHPHC", "A"),
            ("MOTDETAT", "000000"),
            ("PPOT", "00"),
        ],
        mode=Mode.HISTORIQUE,
    )


def _std(rng: random.Random, i: int, *, tri: bool) -> bytes:
    s = rng.randrange(100, 9000)
    stamp = f"H2412{1 + i % 28:02d}{i % 24:02d}{i % 60:02d}{(i * 7) % 60:02d}"
    groups: list[tuple[str, str] | tuple[str, str, str | None]] = [
        ("ADSC", "041776199277" if tri else "021861348497"),
        ("VTIC", "02"),
        ("DATE", "", stamp),
        ("NGTF", "      TEMPO     " if tri else "H PLEINE/CREUSE "),
        ("LTARF", "    HP BLEU     "),
        ("EAST", f"{8_765_432 + i * 9:09d}"),
        ("EASF01", f"{3_456_789 + i * 4:09d}"),
        ("EASF02", f"{5_308_643 + i * 5:09d}"),
        *[(f"EASF{k:02d}", "000000000") for k in range(3, 11)],
        ("EASD01", f"{3_456_789 + i * 4:09d}"),
        ("EASD02", f"{5_308_643 + i * 5:09d}"),
        ("EASD03", "000000000"),
        ("EASD04", "000000000"),
        ("IRMS1", f"{s // 230:03d}"),
        ("URMS1", f"{228 + i % 5:03d}"),
        ("PREF", "12"),
        ("PCOUP", "12"),
        ("SINSTS", f"{s:05d}"),
        ("SMAXSN", "07854", stamp),
        ("SMAXSN-1", "06512", stamp),
        ("CCASN", "01234", stamp),
        ("CCASN-1", "01180", stamp),
        ("UMOY1", "231", stamp),
        ("STGE", "003A0001"),
        ("MSG1", "PAS DE          MESSAGE         "),
        ("PRM", "21483245652310"),
        ("RELAIS", "000"),
        ("NTARF", "02"),
        ("NJOURF", "00"),
        ("NJOURF+1", "00"),
        (
            "PJOURF+1",
            "00004001 06004002 22004001 NONUTILE NONUTILE NONUTILE NONUTILE "
            "NONUTILE NONUTILE NONUTILE NONUTILE",
        ),
    ]
    if tri:
        groups += [
            ("IRMS2", "004"),
            ("IRMS3", "007"),
            ("URMS2", "232"),
            ("URMS3", "229"),
            ("SINSTS1", "01234"),
            ("SINSTS2", "00987"),
            ("SINSTS3", "01598"),
            ("EAIT", f"{1_234 + i:09d}"),
            ("SINSTI", "00000"),
        ]
    return encode_frame(groups, mode=Mode.STANDARD)


def build_corpus(n_frames: int, seed: int = 1) -> list[bytes]:
    """Return a list of encoded frames mixing the four meter kinds."""
    rng = random.Random(seed)
    makers = [
        lambda i: _hist_mono(rng, i),
        lambda i: _hist_tri(rng, i),
        lambda i: _std(rng, i, tri=False),
        lambda i: _std(rng, i, tri=True),
    ]
    return [makers[i % 4](i) for i in range(n_frames)]


def time_wesh(data: bytes, reps: int) -> tuple[float, int, int]:
    """Median seconds to decode ``data`` in 4 KiB chunks into label -> value dicts."""
    times = []
    frames = groups = 0
    for _ in range(reps):
        decoder = FrameDecoder()
        start = time.process_time()
        out = []
        for pos in range(0, len(data), CHUNK):
            out += decoder.feed(data[pos : pos + CHUNK])
        out += decoder.flush()
        # Peers return a label -> value dict per frame: do the same work.
        groups = sum(len(f.values()) for f in out)
        times.append(time.process_time() - start)
        frames = len(out)
    return statistics.median(times), frames, groups


# Run inside a peer's venv: argv = mode (probe|time), corpus path, reps.
PYTELEINFO_HARNESS = r"""
import json, statistics, sys, time
from teleinfo import codec
mode, path, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(path, "rb").read()
def run(collect):
    ok = []; groups = 0
    for n, raw in enumerate(data.split(b"\x03")[:-1]):
        try:
            d = codec.decode(raw + b"\x03")
        except Exception:
            continue
        groups += len(d)
        if collect: ok.append(n)
    return ok, groups
if mode == "probe":
    print(json.dumps(run(True)[0]))
else:
    times = []
    for _ in range(reps):
        t = time.process_time(); ok, groups = run(False); times.append(time.process_time() - t)
    print(json.dumps({"seconds": statistics.median(times), "groups": groups}))
"""

TELEINFO_HARNESS = r"""
import json, statistics, sys, time
from teleinfo import Parser
from teleinfo.base_vendor import BASE_vendor
mode, path, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(path, "rb").read()
class Memory(BASE_vendor):
    def __init__(self, text): self._it = iter(text)
    def read_char(self): return next(self._it)
def run(collect):
    parser = Parser(Memory(data.decode("latin-1")))
    ok = []; groups = 0; n = 0
    while True:
        try:
            frame = parser.get_frame()
        except (StopIteration, RuntimeError):
            break
        n += 1  # Parser() skips the first frame while synchronising: n is the frame index
        if frame:
            groups += len(frame)
            if collect: ok.append(n)
    return ok, groups
if mode == "probe":
    print(json.dumps(run(True)[0]))
else:
    times = []
    for _ in range(reps):
        t = time.process_time(); ok, groups = run(False); times.append(time.process_time() - t)
    print(json.dumps({"seconds": statistics.median(times), "groups": groups}))
"""

PEERS = {
    "pyteleinfo": ("pyteleinfo==0.4.0", PYTELEINFO_HARNESS),
    "teleinfo": ("teleinfo==1.3.1", TELEINFO_HARNESS),
}


def _peer(python: Path, harness: str, mode: str, path: Path, reps: int) -> object:
    out = subprocess.run(
        [str(python), "-c", harness, mode, str(path), str(reps)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main() -> int:
    """Measure and print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpus, fewer rounds")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    n_frames, rounds, reps = (400, 3, 3) if args.quick else (4000, 5, 3)

    frames = build_corpus(n_frames)
    stream = b"".join(frames)
    results = []
    wesh_s, wesh_frames, wesh_groups = time_wesh(stream, reps)
    results.append(
        {
            "decoder": "wesh (whole corpus)",
            "bytes": len(stream),
            "frames": wesh_frames,
            "groups": wesh_groups,
            "median_s": wesh_s,
            "mb_s": len(stream) / wesh_s / 1e6,
            "frames_s": wesh_frames / wesh_s,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        corpus_path = Path(tmp) / "corpus.bin"
        corpus_path.write_bytes(stream)
        for name, (requirement, harness) in PEERS.items():
            python = peer_python(name, requirement)
            if python is None:
                results.append({"decoder": name, "error": "could not be installed"})
                continue
            parsable = _peer(python, harness, "probe", corpus_path, 1)
            assert isinstance(parsable, list)
            subset = b"".join(frames[i] for i in parsable)
            subset_path = Path(tmp) / f"{name}.bin"
            subset_path.write_bytes(subset)
            peer_times, wesh_times = [], []
            peer_groups = 0
            for _ in range(rounds):  # interleave: same machine state for both
                measured = _peer(python, harness, "time", subset_path, reps)
                assert isinstance(measured, dict)
                peer_times.append(measured["seconds"])
                peer_groups = measured["groups"]
                wesh_times.append(time_wesh(subset, reps)[0])
            peer_s, ours_s = statistics.median(peer_times), statistics.median(wesh_times)
            results.append(
                {
                    "decoder": f"{name} {requirement.split('==')[1]}",
                    "bytes": len(subset),
                    "frames": len(parsable),
                    "groups": peer_groups,
                    "median_s": peer_s,
                    "mb_s": len(subset) / peer_s / 1e6,
                    "frames_s": len(parsable) / peer_s,
                    "wesh_mb_s": len(subset) / ours_s / 1e6,
                    "ratio": peer_s / ours_s,
                }
            )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"corpus: {n_frames} frames, {len(stream)} bytes; {rounds} rounds x {reps} reps, medians")
    print("| decoder | bytes | frames | MB/s | frames/s | wesh MB/s, same bytes | wesh / peer |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['decoder']} | {r['error']} | | | | | |")
            continue
        extra = f"{r['wesh_mb_s']:.2f} | **{r['ratio']:.1f}x**" if "ratio" in r else "— | —"
        print(
            f"| {r['decoder']} | {r['bytes']} | {r['frames']} | {r['mb_s']:.2f} "
            f"| {r['frames_s']:.0f} | {extra} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
