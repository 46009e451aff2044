"""The transport interface's pure helpers and SendReceipt."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wesh.errors import DeviceTimeout, UsageError
from wesh.sync.transport import (
    GSM_SAFE_ASCII,
    SMS_PART_CHARS,
    SendReceipt,
    SendStatus,
    check_e164,
    check_text,
    redact_peer,
    sms_parts,
    split_sms,
)

SAFE = "".join(sorted(GSM_SAFE_ASCII))


@pytest.mark.parametrize(
    ("length", "parts"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (400, 3), (7650, 50)]
)
def test_sms_parts(length: int, parts: int) -> None:
    assert sms_parts("A" * length) == parts
    assert len(split_sms("A" * length)) == parts


@given(st.text(alphabet=SAFE, min_size=1, max_size=2000))
def test_split_sms_round_trip(text: str) -> None:
    pieces = split_sms(text)
    assert "".join(pieces) == text
    assert len(pieces) == sms_parts(text)
    if len(pieces) > 1:
        assert all(len(p) <= SMS_PART_CHARS for p in pieces)


def test_check_text() -> None:
    assert check_text("0123456789ABCDEF") == "0123456789ABCDEF"
    assert check_text("A" * 7650) and check_text("A" * 40_000, max_chars=40_000)
    for bad in ("", "é", "a\nb", "[x]", "`", "~", "\x00"):
        with pytest.raises(UsageError):
            check_text(bad)
    with pytest.raises(UsageError):
        check_text(b"AB")
    with pytest.raises(UsageError):
        check_text("A" * 7651)  # 51 parts
    with pytest.raises(UsageError):
        check_text("A" * 161, max_parts=1)
    with pytest.raises(UsageError):
        check_text("A" * 11, max_chars=10)


@given(st.text(max_size=50))
def test_check_text_accepts_exactly_gsm_safe_ascii(text: str) -> None:
    ok = bool(text) and all(c in GSM_SAFE_ASCII for c in text)
    if ok:
        assert check_text(text) == text
    else:
        with pytest.raises(UsageError):
            check_text(text)


def test_check_e164_and_redaction() -> None:
    assert check_e164("+33612345678") == "+33612345678"
    for bad in ("0612345678", "+0612345678", "+336 12", "+12345", "+1234567890123456", 33612345678):
        with pytest.raises(UsageError) as caught:
            check_e164(bad)
        assert "2345" not in str(caught.value)  # the number is redacted in the error too
    assert redact_peer("+33612345678") == "…678"
    assert redact_peer("0612345678") == "…678"
    assert redact_peer("site-a") == "site-a"
    assert redact_peer("hq") == "hq"


async def test_receipt_wait_and_resolve() -> None:
    receipt = SendReceipt(transport="t", id="1", peer="+33612345678", parts=2)
    assert receipt.status is SendStatus.PENDING and not receipt.done()
    with pytest.raises(DeviceTimeout):
        await receipt.wait(0.01)
    waiter = asyncio.create_task(receipt.wait(5))
    await asyncio.sleep(0)
    receipt.resolve(SendStatus.FAILED, "error/")
    receipt.resolve(SendStatus.SENT)  # ignored: the outcome is known already
    assert await waiter is SendStatus.FAILED
    assert receipt.detail == "error/"
    assert "…678" in repr(receipt) and "612345678" not in repr(receipt)
