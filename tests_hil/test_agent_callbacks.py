"""The ota_agent component's callbacks, as an application sees them.

The reference app (device/main/app_hooks.c) logs every callback the component calls, with its arguments,
as `app_cb: <callback> <arguments>`; these scenarios read those lines from the serial console and check
the order and the arguments against what happened on the wire. `hold on` (the app's console command)
makes its on_check_start refuse updates.
"""

from __future__ import annotations

import json
import re

from harness import commands
from harness.link import DeviceLink

CALLBACK_LINE = re.compile(r"app_cb: (on_\w+|self-test):? ?(.*)$")
NO_AUTO_CHECK = 3600  # manifest_delay_s: only a check command starts one


def callbacks_since(board, mark: int) -> list[tuple[str, str]]:
    """(callback, arguments) of each app_cb line printed since the serial mark, in order."""
    found = (CALLBACK_LINE.search(line.text) for line in board.serial.lines[mark:])
    return [(m.group(1), m.group(2) or "") for m in found if m]


def last_line_index(board, text: str) -> int:
    """The index of the last serial line so far that contains text."""
    lines = board.serial.lines
    return next(i for i in range(len(lines) - 1, -1, -1) if text in lines[i].text)


def names(calls: list[tuple[str, str]]) -> list[str]:
    """The callbacks in order, on_progress runs collapsed to one entry."""
    order: list[str] = []
    for name, _ in calls:
        if not (order and order[-1] == name == "on_progress"):
            order.append(name)
    return order


def test_callbacks_of_an_update_that_installs(board, ota, link: DeviceLink, fw_server, firmware) -> None:
    """on_check_start (id, url, version), on_suspend_tasks, on_started, on_progress up to the image size,
    on_finished, in that order, before `rebooting`; the new image then runs the app's self-test before
    `succeeded`."""
    image = firmware.image(version="2.0.0")
    artifact = fw_server.add(image)
    since = ota.start_until_reboot("cb1", artifact.url, version="2.0.0")
    board.expect(r"app_cb: on_finished", timeout=5)
    calls = callbacks_since(board, ota.serial_mark)
    assert names(calls) == ["on_check_start", "on_suspend_tasks", "on_started", "on_progress", "on_finished"]
    assert calls[0][1] == f"id=cb1 url={artifact.url} version=2.0.0 -> go"
    assert calls[2][1] == "id=cb1 version=2.0.0" and calls[-1][1] == "id=cb1"
    progress = [tuple(map(int, args.split("/"))) for name, args in calls if name == "on_progress"]
    events = [e for e in link.ota_events(board.device_id, "cb1") if e["state"] == "downloading"]
    assert [current for current, _ in progress] == [e["bytes"] for e in events], "one on_progress per event"
    assert progress[-1] == (len(image), len(image))

    # The new image boots within milliseconds, so lines printed after on_finished may be there already; and the
    # serial reader can be behind the MQTT link, so the self-test's line is waited for, not just looked up.
    finished_at = last_line_index(board, "app_cb: on_finished")
    link.wait_ota(board.device_id, "cb1", "succeeded", timeout=20, since=since, fail_on={"rolled_back"})
    board.expect(r"app_cb: self-test", timeout=5)
    assert callbacks_since(board, finished_at + 1) == [("self-test", "pass")]


def test_callbacks_of_an_update_that_fails(board, ota, fw_server) -> None:
    """A download that fails (HTTP 404): on_started, then on_failed with the event's reason and detail, then
    on_resume_tasks; never on_finished."""
    since = ota.start("cb2", f"{fw_server.base_url}/no/such/image.bin")
    event = ota.expect_outcome("cb2", "failed", "http_status", since)
    board.expect(r"app_cb: on_resume_tasks", timeout=5)
    calls = callbacks_since(board, ota.serial_mark)
    assert names(calls) == ["on_check_start", "on_suspend_tasks", "on_started", "on_failed", "on_resume_tasks"]
    assert calls[3][1] == f"reason=http_status detail={event.get('detail', '')}"
    ota.assert_healthy_on_base(since)


def test_callbacks_when_the_image_is_the_running_version(board, ota, fw_server, firmware) -> None:
    """A command whose image turns out to be the running version: on_up_to_date with that version and
    on_resume_tasks, not on_failed (a command learns the version from the image header, so after
    on_started)."""
    artifact = fw_server.add(firmware.image(version=firmware.base_version))
    since = ota.start("cb3", artifact.url)
    ota.expect_outcome("cb3", "rejected", "same_version", since)
    board.expect(r"app_cb: on_resume_tasks", timeout=5)
    calls = callbacks_since(board, ota.serial_mark)
    assert names(calls)[-2:] == ["on_up_to_date", "on_resume_tasks"]
    assert ("on_up_to_date", f"version={firmware.base_version}") in calls
    assert "on_failed" not in names(calls)


def test_on_check_start_refusal_is_busy_and_nothing_runs(board, ota, link: DeviceLink, fw_server,
                                                         firmware) -> None:
    """While the app holds updates off (`hold on`), an update is `rejected`/`busy` naming on_check_start,
    with no other callback and no download; after `hold off` the same update installs."""
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    board.console("hold on")
    since = ota.start("cb4", artifact.url)
    event = ota.expect_outcome("cb4", "rejected", "busy", since)
    assert "on_check_start" in event["detail"], event
    board.expect(r"app_cb: on_check_start .* -> refused", timeout=5)  # the console may lag the event
    calls = callbacks_since(board, ota.serial_mark)
    assert calls == [("on_check_start", f"id=cb4 url={artifact.url} version= -> refused (hold on)")]
    assert fw_server.requests_for(artifact) == [], "a refused update was downloaded"

    board.console("hold off")
    assert ota.install("cb5", artifact.url, "2.0.0")["partition"] == "ota_1"


def test_callbacks_of_a_manifest_check_with_nothing_newer(board_factory, ota_for, link: DeviceLink, fw_server,
                                                          firmware) -> None:
    """A manifest check that finds the running version: on_check_start (id `manifest`, the manifest's
    URL), on_suspend_tasks, on_up_to_date, on_resume_tasks, as the manifest library's up-to-date path;
    no on_started."""
    artifact = fw_server.add(firmware.image(version=firmware.base_version))
    body = {"version": firmware.base_version, "url": artifact.url, "sha256": artifact.sha256}
    manifest = fw_server.add(json.dumps(body).encode(), name="manifest.json")
    board = board_factory(manifest_url=manifest.url, manifest_delay_s=NO_AUTO_CHECK)
    ota = ota_for(board)
    since = ota.send(commands.check())
    ota.expect_outcome("manifest", "rejected", "same_version", since)
    board.expect(r"app_cb: on_resume_tasks", timeout=5)
    calls = callbacks_since(board, ota.serial_mark)
    assert names(calls) == ["on_check_start", "on_suspend_tasks", "on_up_to_date", "on_resume_tasks"]
    assert calls[0][1] == f"id=manifest url={manifest.url} version= -> go"
    assert calls[2][1] == f"version={firmware.base_version}"
