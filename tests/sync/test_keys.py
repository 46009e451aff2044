"""Site keys: generation, private files, loading by site and key id, refusals."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wesh.errors import ConfigError, UsageError
from wesh.sync.keys import (
    KEY_BYTES,
    KeyRing,
    check_site_id,
    generate_key,
    key_path,
    keygen,
    load_key,
    write_key,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keygen_writes_a_private_file_in_a_private_dir(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    path = keygen("site-a", directory)
    assert path == directory / "site-a.key"
    assert mode(directory) == 0o700
    assert mode(path) == 0o600
    key = load_key(directory, "site-a")
    assert key.site == "site-a"
    assert len(key.key) == KEY_BYTES
    assert 1 <= key.key_id <= 0xFFFF
    assert key.key.hex() not in repr(key)
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]


def test_existing_key_is_kept_unless_forced(tmp_path: Path) -> None:
    keygen("site-a", tmp_path / "k")
    first = load_key(tmp_path / "k", "site-a")
    with pytest.raises(UsageError, match="already exists"):
        keygen("site-a", tmp_path / "k")
    assert load_key(tmp_path / "k", "site-a") == first
    keygen("site-a", tmp_path / "k", force=True)
    assert load_key(tmp_path / "k", "site-a").key != first.key


def test_loose_directory_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "k"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    keygen("site-a", directory)
    assert mode(directory) == 0o700


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = keygen("site-a", tmp_path / "k")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="group or others"):
        load_key(tmp_path / "k", "site-a")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("site = 'site-a'\nkey_id = 1\n", "'key'"),
        ("site = 'site-a'\nkey_id = 0\nkey = '" + "00" * 32 + "'\n", "key_id"),
        ("site = 'site-a'\nkey_id = 7\nkey = 'abcd'\n", "'key'"),
        ("key_id = 7\nkey = '" + "00" * 32 + "'\n", "'site'"),
        ("this is not toml", "TOML"),
        ("site = 'other'\nkey_id = 7\nkey = '" + "00" * 32 + "'\n", "names site"),
    ],
)
def test_bad_key_files(tmp_path: Path, text: str, match: str) -> None:
    directory = tmp_path / "k"
    directory.mkdir(mode=0o700)
    path = directory / "site-a.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    with pytest.raises(ConfigError, match=match):
        load_key(directory, "site-a")


@pytest.mark.parametrize("site", ["", "../x", ".hidden", "a b", "x" * 65, "é"])
def test_bad_site_ids(site: str) -> None:
    with pytest.raises(UsageError):
        check_site_id(site)
    with pytest.raises(UsageError):
        key_path(Path("/tmp"), site)


def test_key_id_range() -> None:
    assert generate_key("s", key_id=65535).key_id == 65535
    with pytest.raises(UsageError):
        generate_key("s", key_id=0)


def test_keyring_loads_by_site_and_id_and_skips_bad_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "k"
    for n in range(3):
        write_key(generate_key(f"site-{n}", key_id=100 + n), directory)
    write_key(generate_key("site-x", key_id=100), directory)  # shares an id with site-0
    (directory / "site-3.key").write_text("garbage")
    (directory / "site-3.key").chmod(0o600)
    (directory / "notes.txt").write_text("ignored")
    ring = KeyRing.load(directory)
    assert ring.sites() == ["site-0", "site-1", "site-2", "site-x"]
    assert len(ring) == 4
    assert {key.site for key in ring.for_key_id(100)} == {"site-0", "site-x"}
    assert ring.for_key_id(999) == []
    site1 = ring.for_site("site-1")
    assert site1 is not None
    assert site1.key_id == 101
    assert ring.for_site("nope") is None
    assert "site-3.key" in caplog.text
    ring.add(generate_key("site-1", key_id=555))
    assert ring.for_key_id(101) == []
    assert [k.site for k in ring.for_key_id(555)] == ["site-1"]


def test_keyring_refuses_a_world_writable_dir(tmp_path: Path) -> None:
    directory = tmp_path / "k"
    directory.mkdir()
    directory.chmod(0o777)
    with pytest.raises(ConfigError, match="writable"):
        KeyRing.load(directory)
    with pytest.raises(ConfigError):
        KeyRing.load(tmp_path / "missing")
