"""B11: malformed commands get a rejected/bad_command event, never a crash or a reboot."""

import json
import random

import pytest

from harness.link import DeviceLink

MALFORMED = {
    "not_json": b"{type: ota",
    "array": b"[1, 2, 3]",
    "missing_type": b'{"url": "http://127.0.0.1/x"}',
    "unknown_type": b'{"type": "format_flash"}',
    "type_not_string": b'{"type": 7}',
    "ota_without_url": b'{"type": "ota", "id": "x"}',
    "url_not_string": b'{"type": "ota", "url": 5}',
    "bad_scheme": b'{"type": "ota", "url": "ftp://127.0.0.1/fw.bin"}',
    "url_too_long": json.dumps({"type": "ota", "url": "http://h/" + "a" * 300}).encode(),
    "id_too_long": json.dumps({"type": "ota", "id": "i" * 80, "url": "http://h/x"}).encode(),
    "sha_not_hex": b'{"type": "ota", "url": "http://h/x", "sha256": "zz"}',
    "size_negative": b'{"type": "ota", "url": "http://h/x", "size": -1}',
    "force_not_bool": b'{"type": "ota", "url": "http://h/x", "force": "yes"}',
    "timeout_zero": b'{"type": "ota", "url": "http://h/x", "timeout_s": 0}',
    "too_long": json.dumps({"type": "ota", "url": "http://h/x", "pad": "p" * 5000}).encode(),
    "empty": b"",
}


def _publish(link: DeviceLink, device_id: str, payload: bytes) -> None:
    link.publish(f"devices/{device_id}/cmd", payload)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_command_is_rejected(ota, link: DeviceLink, board, name: str) -> None:
    since = link.cursor()
    ota.serial_mark = board.serial.mark()
    _publish(link, board.device_id, MALFORMED[name])
    event = link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "ota" and
                          m.data.get("state") == "rejected", timeout=10,
                          description=f"rejected event for {name}", since=since).data
    assert event["reason"] == "bad_command", event
    ota.assert_healthy_on_base(since)


def test_hundreds_of_bad_payloads_leave_the_device_healthy(ota, link: DeviceLink, board, fw_server, firmware) -> None:
    rng = random.Random(1234)
    since = link.cursor()
    ota.serial_mark = board.serial.mark()
    payloads = list(MALFORMED.values())
    for _ in range(300):
        kind = rng.randrange(3)
        if kind == 0:
            payloads.append(rng.randbytes(rng.randrange(1, 200)))
        elif kind == 1:
            payloads.append(json.dumps({"type": rng.choice(["ota", "cancel", "x", "ota_trigger"]),
                                        "url": rng.choice([1, None, "h", "http://"]),
                                        "size": rng.choice([-5, "a", 1.5])}).encode())
        else:
            payloads.append(b'{"type":"ota","url":"' + rng.randbytes(rng.randrange(1, 40)).hex().encode() + b'"}')
    for payload in payloads:
        _publish(link, board.device_id, payload)
    # Every one is answered: the device handled them all, in order, without a reboot.
    link.wait_for(lambda m: len([x for x in link.messages[since:] if x.kind == "ota" and x.device_id ==
                                 board.device_id]) >= len(payloads) - 1, timeout=30,
                  description="an answer to every bad command", since=since)
    ota.assert_healthy_on_base(since)
    ota.install("after-fuzz", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
