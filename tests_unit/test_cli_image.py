"""`python -m harness image ...`, `board run` and `build` as a user types them: what they print, and a clear
error with exit status 2 (no traceback) for a file that cannot be read or written."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.formats.app_image import build_virtual_image

EXECUTABLE = bytes(range(256)) * 16  # any payload: the image format does not look inside it


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "app.bin"
    path.write_bytes(build_virtual_image(EXECUTABLE, version="1.2.3", project_name="cli_app"))
    return path


def run(*argv: str, tmpdir: Path | None = None) -> tuple[int, str, str]:
    """`python -m harness ARGV`; with `tmpdir`, its temporary files (tempfile's) go there."""
    env = {**os.environ, "TMPDIR": str(tmpdir)} if tmpdir is not None else None
    done = subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True, text=True, timeout=30,
                          check=False, env=env)
    return done.returncode, done.stdout, done.stderr


def info_lines(path: Path) -> dict[str, str]:
    code, out, err = run("image", "info", str(path))
    assert (code, err) == (0, ""), err
    return {key: value.strip() for key, value in (line.split(":", 1) for line in out.splitlines())}


def test_info_shows_the_version_project_and_the_hash_of_what_is_hashed(image: Path) -> None:
    shown = info_lines(image)
    data = image.read_bytes()
    assert (shown["project"], shown["version"], shown["checksum"]) == ("cli_app", "1.2.3", "valid")
    assert shown["sha256"] == data[-32:].hex() == hashlib.sha256(data[:-32]).hexdigest()


def test_patch_version_writes_an_image_that_info_accepts_at_the_new_version(image: Path, tmp_path: Path) -> None:
    patched = tmp_path / "v2.bin"
    code, out, _ = run("image", "patch-version", str(image), "2.0.0", "-o", str(patched))
    assert code == 0 and out.strip() == f"{patched}: version 2.0.0"
    assert info_lines(patched)["version"] == "2.0.0"


def test_a_corrupted_image_is_refused_by_info_with_the_reason(image: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "bad.bin"
    assert run("image", "corrupt", str(image), "-o", str(damaged), "--flip", "0x100")[0] == 0
    code, out, err = run("image", "info", str(damaged))
    assert (code, out) == (1, "")
    assert err.startswith(f"{damaged}: not a valid app image (") and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["image", "info", "{missing}"],
    ["image", "patch-version", "{missing}", "2.0.0", "-o", "{out}"],
    ["image", "corrupt", "{missing}", "-o", "{out}", "--truncate", "10"],
    ["board", "run", "--image", "{missing}"],
], ids=["info", "patch-version", "corrupt", "board-run"])
def test_a_file_that_is_not_there_is_named_with_exit_status_2(argv: list[str], tmp_path: Path) -> None:
    missing, out, temp = tmp_path / "no-such.bin", tmp_path / "out.bin", tmp_path / "temp"
    temp.mkdir()
    code, stdout, err = run(*(a.format(missing=missing, out=out) for a in argv), tmpdir=temp)
    assert (code, stdout) == (2, "")
    assert err == f"{argv[0]} {argv[1]}: cannot read {missing}: No such file or directory\n"
    assert not out.exists() and not list(temp.iterdir()), "nothing is made for a command that cannot run"


@pytest.mark.parametrize("argv", [
    ["image", "patch-version", "{image}", "2.0.0", "-o", "{out}"],
    ["image", "corrupt", "{image}", "-o", "{out}", "--truncate", "10"],
    ["board", "run", "--image", "{image}", "--flash", "{out}"],
], ids=["patch-version", "corrupt", "board-run-flash"])
def test_an_output_that_cannot_be_written_is_named_with_exit_status_2(argv: list[str], image: Path,
                                                                     tmp_path: Path) -> None:
    out, temp = tmp_path / "no-such-dir" / "out.bin", tmp_path / "temp"
    temp.mkdir()
    code, stdout, err = run(*(a.format(image=image, out=out) for a in argv), tmpdir=temp)
    assert (code, stdout) == (2, "")
    assert err == f"{argv[0]} {argv[1]}: cannot write {out}: No such file or directory\n"
    assert not list(temp.iterdir()), "nothing is left behind"


def test_build_with_port_check_builds_the_host_ports_test_app_too() -> None:
    """`make hil`'s set-up: the reset scenarios boot port_check, and no test has to wait for its build."""
    code, out, err = run("build", "default", "--port-check")
    assert (code, err) == (0, ""), err
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert re.fullmatch(r"/.+/hil_ota_agent\.bin \(version \S+\)", lines["default"]), lines
    exe = Path(lines["port_check"])
    assert exe.name == "hil_port_check" and os.access(exe, os.X_OK)


@pytest.mark.parametrize(("argv", "expected"), [
    (["image", "corrupt", "{image}", "-o", "{out}", "--truncate", "-5"], "--truncate -5: {image} has "),
    (["image", "corrupt", "{image}", "-o", "{out}", "--truncate", "99999999"], "keep 0 to "),
    (["image", "corrupt", "{image}", "-o", "{out}"], "nothing to damage: give --flip OFFSET ... and/or --truncate N"),
    (["image", "corrupt", "{image}", "-o", "{out}", "--flip", "zz"], "'zz' is not an offset"),
    (["build", "nosuch"], "'nosuch' is not a variant; the variants are default, "),
    (["catalog", "--check", "{out}"], "catalog: cannot read {out}: No such file or directory"),
    (["image", "patch-version", "{image}", "", "-o", "{out}"], "the new version is empty: give one, e.g. 2.0.0"),
    (["board", "run", "--image", "{image}", "--device-id", "has space"],
     "argument --device-id: 'has space': a device id is one topic level: not empty, without /, +, # or spaces"),
    (["board", "run", "--image", "{image}", "--device-id", "dev#1"], "a device id is one topic level"),
    (["push", "--broker", "mqtt://127.0.0.1:1", "--device", "a/b", "{image}"], "a device id is one topic level"),
    (["lab", "--http-port", "99999"], "argument --http-port: 99999 is not from 0 to 65535"),
    (["lab", "--device-timeout", "-1"], "argument --device-timeout: -1: give more than 0 seconds"),
    (["farm", "serve", "--power-port", "70000"], "argument --power-port: 70000 is not from 0 to 65535"),
    (["farm", "serve", "--boards", "0"], "argument --boards: 0 is not from 1 to 1000"),
    (["farm", "serve", "--boards", "2", "--first-port", "65535"],
     "--first-port 65535 leaves no room for 2 boards' ports (the last would be 65536); use at most 65534, or 0"),
    (["farm", "builds", "{out}", "--variant", "nosuch"], "'nosuch' is not a variant"),
], ids=["truncate_negative", "truncate_past_the_end", "corrupt_nothing", "flip_not_a_number", "build_no_such_variant",
        "catalog_no_such_file", "patch_empty_version", "device_id_with_a_space", "device_id_with_a_wildcard",
        "push_device_with_a_slash", "lab_port_out_of_range", "lab_negative_deadline", "farm_port_out_of_range",
        "farm_no_boards", "farm_ports_past_the_last", "farm_builds_no_such_variant"])
def test_a_wrong_option_is_one_line_that_names_it(image: Path, tmp_path: Path, argv: list[str], expected: str) -> None:
    """Exit status 2, no traceback, nothing written (before, these were a ValueError traceback, an identical copy
    exiting 0, "invalid <lambda> value", a cmake run for a variant that does not exist, a bare errno; for ports out
    of range an OverflowError traceback, for a device id with a space one after a whole boot, with a wildcard a
    board that never connected; a farm of no boards that served nothing)."""
    out = tmp_path / "out.bin"
    code, _, err = run(*(a.format(image=image, out=out) for a in argv))
    assert code == 2 and expected.format(image=image, out=out) in err and "Traceback" not in err, err
    assert not out.exists()


def test_patch_version_refuses_a_damaged_image_unless_forced(image: Path, tmp_path: Path) -> None:
    """The fix-up recomputes the checksum and hash: patching a damaged image would make it look valid."""
    damaged, out = tmp_path / "damaged.bin", tmp_path / "out.bin"
    data = bytearray(image.read_bytes())
    data[100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    code, _, err = run("image", "patch-version", str(damaged), "2.0.0", "-o", str(out))
    assert code == 1 and "not a valid app image" in err and "--force" in err and not out.exists(), err
    code, _, err = run("image", "patch-version", str(damaged), "2.0.0", "-o", str(out), "--force")
    assert code == 0 and info_lines(out)["version"] == "2.0.0", err
