"""Malformed input.

B11: malformed commands get a rejected/bad_command event, never a crash or a reboot.
"""

import json
import random
from collections.abc import Callable

import pytest

from harness.link import DeviceLink
from harness.protocol import Message

URL = "http://127.0.0.1/fw.bin"  # never fetched: every command below is refused before a download

MALFORMED = {
    "not_json": b"{type: ota",
    "array": b"[1, 2, 3]",
    "missing_type": json.dumps({"url": URL}).encode(),
    "unknown_type": b'{"type": "format_flash"}',
    "type_not_string": b'{"type": 7}',
    "ota_without_url": b'{"type": "ota", "id": "x"}',
    "url_not_string": b'{"type": "ota", "url": 5}',
    "bad_scheme": b'{"type": "ota", "url": "ftp://127.0.0.1/fw.bin"}',
    "url_too_long": json.dumps({"type": "ota", "url": "http://h/" + "a" * 300}).encode(),
    "id_too_long": json.dumps({"type": "ota", "id": "i" * 80, "url": URL}).encode(),
    "id_not_string": json.dumps({"type": "ota", "id": 7, "url": URL}).encode(),
    "version_too_long": json.dumps({"type": "ota", "url": URL, "version": "9" * 40}).encode(),
    "sha_not_hex": json.dumps({"type": "ota", "url": URL, "sha256": "zz"}).encode(),
    "sha_wrong_length": json.dumps({"type": "ota", "url": URL, "sha256": "ab" * 31}).encode(),
    # 64 characters that sscanf("%2x") would take for bytes ("+f" -> 0x0f) but that are not hex digits
    "sha_signs": json.dumps({"type": "ota", "url": URL, "sha256": "+f" * 32}).encode(),
    "sha_spaces": json.dumps({"type": "ota", "url": URL, "sha256": " f" * 32}).encode(),
    "size_negative": json.dumps({"type": "ota", "url": URL, "size": -1}).encode(),
    "size_fraction": json.dumps({"type": "ota", "url": URL, "size": 1.5}).encode(),
    "size_string": json.dumps({"type": "ota", "url": URL, "size": "100"}).encode(),
    "size_huge": json.dumps({"type": "ota", "url": URL, "size": 1e300}).encode(),
    "force_not_bool": json.dumps({"type": "ota", "url": URL, "force": "yes"}).encode(),
    "timeout_zero": json.dumps({"type": "ota", "url": URL, "timeout_s": 0}).encode(),
    "idle_timeout_negative": json.dumps({"type": "ota", "url": URL, "idle_timeout_s": -3}).encode(),
    "retries_too_many": json.dumps({"type": "ota", "url": URL, "retries": 1000}).encode(),
    "cancel_nothing_running": b'{"type": "cancel", "id": "nothing"}',
    "over_4kb": json.dumps({"type": "ota", "url": URL, "pad": "p" * 5000}).encode(),
    # Under 4 KB, so it reaches the parser: cJSON would recurse 1000 levels, deeper than a task stack.
    "deep_nesting": b"[" * 2000 + b"]" * 2000,
    "nested_9_levels": json.dumps({"type": "ota", "url": URL, "extra": [[[[[[[[1]]]]]]]]}).encode(),
    "empty": b"",
    "not_utf8": b'{"type": "\xff\xfe"}',
}


def _publish(link: DeviceLink, device_id: str, payload: bytes, qos: int = 1) -> None:
    link.publish(f"{link.prefix}/{device_id}/cmd", payload, qos=qos)


def _is_answer(device_id: str) -> Callable[[Message], bool]:
    return lambda m: m.device_id == device_id and m.kind == "ota" and isinstance(m.data, dict)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_command_is_rejected(ota, link: DeviceLink, board, name: str) -> None:
    """B11: malformed commands (bad JSON, types, ranges, over 4 KB, nested 2000 deep, not UTF-8 ...):
    each is answered `rejected`/`bad_command` with a detail, and nothing else changes."""
    since = ota.mark()
    _publish(link, board.device_id, MALFORMED[name])
    event = link.wait_for(_is_answer(board.device_id), timeout=10, since=since,
                          description=f"an answer to the {name} command").data
    assert (event["state"], event.get("reason")) == ("rejected", "bad_command"), event
    assert isinstance(event.get("detail"), str) and event["detail"], event
    ota.assert_healthy_on_base(since)


def _fuzz_payloads(rng: random.Random) -> list[bytes]:
    """A few hundred commands that are each malformed, seeded so a failure replays."""
    payloads = list(MALFORMED.values())
    for _ in range(300):
        kind = rng.randrange(5)
        if kind == 0:  # raw bytes
            payloads.append(rng.randbytes(rng.randrange(1, 200)))
        elif kind == 1:  # an ota command with a field of the wrong type or out of range
            field, value = rng.choice([("url", 1), ("url", None), ("url", "h"), ("url", "http:/"),
                                       ("size", -5), ("size", "a"), ("size", 1.5), ("force", 0),
                                       ("timeout_s", 0), ("retries", -1), ("sha256", "00")])
            payloads.append(json.dumps({"type": rng.choice(["ota", "ota_trigger"]), "url": URL,
                                        field: value}).encode())
        elif kind == 2:  # a url that is not one
            payloads.append(b'{"type":"ota","url":"' + rng.randbytes(rng.randrange(1, 40)).hex().encode() + b'"}')
        elif kind == 3:  # valid JSON, not a command
            payloads.append(json.dumps(rng.choice([None, 0, "ota", [], {}, {"type": None}, {"type": ["ota"]},
                                                   {"type": "reboot!"}, {"Type": "ota", "url": URL}])).encode())
        else:  # a good command cut short
            good = json.dumps({"type": "ota", "id": "f", "url": URL}).encode()
            payloads.append(good[:rng.randrange(1, len(good) - 1)])
    payloads.append(b"[" * 4000 + b"]" * 4000)  # over 4 KB: refused by its length, never parsed
    payloads.append(json.dumps({"type": "ota", "url": URL, "pad": "x" * 4090}).encode())  # just over 4 KB
    return payloads


# The firmware queues at most 8 commands and drops the rest (its MQTT task must never block), so the
# fuzzer keeps a few in flight rather than flooding a real board faster than it answers. QoS 0: the
# order and delivery are TCP's, and a QoS 1 round trip per payload would make this test 20x slower.
IN_FLIGHT = 4


def test_hundreds_of_bad_payloads_leave_the_device_healthy(ota, link: DeviceLink, board, fw_server,
                                                           firmware) -> None:
    """B11: a seeded run of over 300 malformed payloads, every one answered with `bad_command`, in one
    boot (seq never restarts); the device still answers and updates afterwards."""
    payloads = _fuzz_payloads(random.Random(1234))
    since = ota.mark()
    uptime_before = ota.status_before["uptime_s"] if ota.status_before else 0
    answered = _is_answer(board.device_id)
    answers: list[Message] = []

    def wait_answers(count: int) -> None:
        def counted(m: Message) -> bool:
            if answered(m):
                answers.append(m)
            return len(answers) >= count

        if len(answers) < count:
            start = answers[-1].index + 1 if answers else since
            link.wait_for(counted, timeout=10, since=start,
                          description=f"{count} answers to {len(payloads)} bad commands")

    for n, payload in enumerate(payloads, start=1):
        if n > IN_FLIGHT:
            wait_answers(n - IN_FLIGHT)
        _publish(link, board.device_id, payload, qos=0)
    wait_answers(len(payloads))

    events = [m.data for m in link.messages[since:] if answered(m)]
    assert len(events) == len(payloads), "an answer too many"
    odd = [e for e in events if (e["state"], e.get("reason")) != ("rejected", "bad_command")]
    assert not odd, odd[:5]
    seqs = [e["seq"] for e in events]  # one boot: the sequence never restarts and no event is lost
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert not [m for m in link.messages[since:] if m.device_id == board.device_id and m.kind == "online"], \
        "the device reconnected to the broker"
    status = ota.assert_healthy_on_base(since)
    assert status["uptime_s"] >= uptime_before
    ota.install("after-fuzz", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
