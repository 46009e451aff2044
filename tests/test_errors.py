from __future__ import annotations

import pytest

from wesh import errors


def test_every_error_derives_from_the_root() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.WeshError)


def test_context_fields_are_kept_and_shown() -> None:
    exc = errors.ConfigError("bad poll interval", where="weshd.toml:12", host="dw-12")
    assert exc.where == "weshd.toml:12"
    assert exc.host == "dw-12"
    assert str(exc) == "bad poll interval (where=weshd.toml:12, host=dw-12)"


def test_classification() -> None:
    assert issubclass(errors.PermissionDenied, errors.AuthenticationError)
    assert issubclass(errors.DeviceTimeout, errors.TransientError)
    assert issubclass(errors.DecodeError, errors.BadInputError)
    with pytest.raises(errors.TransientError):
        raise errors.ConnectionFailed("refused", host="127.0.0.1")
