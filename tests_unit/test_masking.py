"""Secret masking (harness.masking): one rule for what a secret is, for logs, timelines, reports and reprs."""

from __future__ import annotations

import pytest

from harness import masking
from harness.masking import MASK, TYPED_SECRET, Masker, Secret, is_secret_key, mask_data, mask_secrets, mask_text


def test_mask_hides_password_values_in_text_and_data() -> None:
    assert "hunter2" not in mask_text('config set broker_password hunter2 {"wifi_password": "hunter2"}')
    assert mask_data({"a": {"broker_password": "x", "ok": [1, {"token": "y"}]}}) == \
        {"a": {"broker_password": MASK, "ok": [1, {"token": MASK}]}}


PATTERN_CASES = [
    ("config set wifi_password pa55word", f"config set wifi_password {MASK}"),
    ('{"broker_password": "two words \\" quoted", "id": "r1"}', f'{{"broker_password": "{MASK}", "id": "r1"}}'),
    ("broker_url=mqtt://ci:pa55word@broker:1883", f"broker_url=mqtt://ci:{MASK}@broker:1883"),
    ("GET /fw.bin?token=abc123&x=1", f"GET /fw.bin?token={MASK}&x=1"),
    ("password: pa55word", f"password: {MASK}"),
    ("wifi_password=********", "wifi_password=********"),  # config show masks already; left alone
    ("GET http://host:8080/fw/1/fw.bin", "GET http://host:8080/fw/1/fw.bin"),
    ('I (33) wifi_sta: connecting to "lab"', 'I (33) wifi_sta: connecting to "lab"'),
    ('{"Broker_Password": "x"} ftp://anon:Secret@host', f'{{"Broker_Password": "{MASK}"}} ftp://anon:{MASK}@host'),
]


@pytest.mark.parametrize(("text", "masked"), PATTERN_CASES)
def test_masker_patterns(text: str, masked: str) -> None:
    assert Masker().text(text) == masked


@pytest.mark.parametrize("text", [text for text, _ in PATTERN_CASES])
def test_a_pattern_matches_only_lines_its_quick_test_lets_through(text: str) -> None:
    """Masker.text skips a pattern when its quick test fails: the test must pass every line the pattern matches."""
    for may_match, patterns in masking._PATTERNS:
        for pattern in patterns:
            if pattern.search(text):
                assert may_match(text), (pattern.pattern, text)


def test_known_secrets_are_masked_wherever_they_appear() -> None:
    masker = Masker()
    masker.add_from_settings({"wifi_password": "Lab-WiFi-2024", "broker_password": "mq", "device_id": "vb1"})
    assert masker.text("echo: Lab-WiFi-2024 joined") == f"echo: {MASK} joined"
    assert masker.text("vb1 says mq, not mqtt") == f"vb1 says {MASK}, not mqtt"  # short: whole words only
    assert masker.data({"note": "pass Lab-WiFi-2024", "n": 3}) == {"note": f"pass {MASK}", "n": 3}
    assert "vb1" in masker.text("vb1")  # not a secret key



def test_known_secrets_alone_leave_the_rest_of_a_line_as_it_is() -> None:
    """What a real board's console log keeps: its own secrets hidden, the console's words untouched."""
    assert mask_secrets("OK wifi_password set; hunter22", {"hunter22"}) == f"OK wifi_password set; {MASK}"
    assert mask_secrets("a hunter22 b", {"hunter2", "hunter22", ""}) == f"a {MASK} b"  # the longest first
    assert mask_secrets("pin 12, 123", {"12"}) == f"pin {MASK}, 123"


@pytest.mark.parametrize(("key", "secret"), [
    ("wifi_password", True), ("broker_password", True), ("ota_token", True), ("api-secret", True),
    ("wifi_ssid", False), ("broker_url", False), ("device_id", False),
])
def test_one_rule_for_secret_keys(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_a_secret_typed_on_the_console_is_found() -> None:
    assert TYPED_SECRET.match("config set wifi_password hunter22").group(1) == "hunter22"
    assert TYPED_SECRET.match("  config set broker_password  s3cret").group(1) == "s3cret"
    assert TYPED_SECRET.match("config set wifi_ssid lab") is None


def test_a_secret_shows_masked_but_works_as_its_value() -> None:
    password = Secret("hunter22")
    assert password == "hunter22" and f"{password}" == "hunter22"
    assert "hunter22" not in repr(password) and "hunter22" not in repr({"wifi_password": password})
