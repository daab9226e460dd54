"""The virtual target's firmware source and board factory (harness/session/interfaces.py).

`VirtualFirmware` builds the project's firmware for the virtual board, per variant, on first use.
`VirtualBoardFactory` makes boards on a new flash file each, and brings each to the baseline with the
sequence every target shares (harness/session/baseline.py).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import panic_decoder
from harness import project as project_mod
from harness.formats.app_image import derive_image
from harness.formats.signing import SigningKey
from harness.link import DeviceLink
from harness.session.baseline import bring_up
from harness.session.record import TestRecord
from harness.virtual import firmware as fw_build
from harness.virtual.board import VirtualBoard, create_flash
from harness.virtual.flash import FlashTiming
from harness.virtual.mesh import MeshMedium

BOOT_TIMEOUT_S = 15.0


@dataclass
class VirtualFirmware:
    """Builds of the project's firmware for the virtual board, made on first use and cached for the session."""

    project: project_mod.HilProject = field(default_factory=project_mod.reference, repr=False)
    build_root: Path | None = field(default=None, repr=False)  # default: harness.virtual.build_dirs.build_root
    builds: dict[str, fw_build.FirmwareBuild] = field(default_factory=dict)
    # derived images by (variant, version, secure_version, key): signing one takes espsecure 0.15 s
    _images: dict[tuple[str, str | None, int | None, SigningKey | None], bytes] = field(default_factory=dict,
                                                                                      repr=False)

    def build(self, variant: str = fw_build.DEFAULT_VARIANT) -> fw_build.FirmwareBuild:
        if variant not in self.builds:
            try:
                self.project.check_variant(variant)
            except project_mod.ProjectError as err:
                pytest.fail(str(err), pytrace=False)
            self.builds[variant] = self._build(variant)
        return self.builds[variant]

    def _build(self, variant: str) -> fw_build.FirmwareBuild:
        try:
            return fw_build.build(variant, self.build_root, self.project)
        except fw_build.FirmwareBuildError as err:
            message = str(err)
        # The message says what failed and how to fix it; failed outside the except block, so that pytest
        # shows it once, without the traceback and the build error it was made from.
        pytest.fail(message, pytrace=False)

    def image(self, variant: str = fw_build.DEFAULT_VARIANT, version: str | None = None, *,
              secure_version: int | None = None, sign_with: SigningKey | None = None) -> bytes:
        """An app image of a variant, reporting `version` and `secure_version` when given (a patched
        descriptor), signed with `sign_with` when given (harness.formats.app_image.derive_image). Made once per
        session: the same arguments give the same bytes (one RSA-PSS signature, though espsecure's differ)."""
        key = (variant, version, secure_version, sign_with)
        if key not in self._images:
            self._images[key] = derive_image(self.build(variant).image, version, secure_version, sign_with)
        return self._images[key]

    @property
    def base_version(self) -> str:
        return self.build().version

    def panic_symbols(self) -> panic_decoder.Symbols:
        """For decoding backtraces: the host ELF of every variant built so far, and Debian's addr2line (the host
        build is a native executable). All variants are given, whichever ran: harness.panic_decoder picks the
        one by the ELF SHA256 the app printed at boot, which the image's descriptor carries."""
        return panic_decoder.Symbols(
            elfs=tuple(build.elf for build in self.builds.values()),
            toolchain_prefix="",
            how_to_get_toolchain="GNU binutils: apt-get install binutils",
        )


@dataclass
class VirtualBoardFactory:
    """Makes provisioned virtual boards running a given firmware; stops them all at teardown."""

    tmp_path: Path
    firmware: VirtualFirmware
    broker_url: str
    link: DeviceLink
    record: TestRecord
    settings: dict[str, object] = field(default_factory=dict, repr=False)  # may hold passwords
    mesh: MeshMedium | None = None  # boards made while set are in range of this mesh (harness/fleet/mesh.py)
    flash_timing: FlashTiming | None = None  # how long the boards' flash writes and erases take (None: no time)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # tests may start boards in threads

    def __call__(self, image: bytes | None = None, *, variant: str = fw_build.DEFAULT_VARIANT,
                 **settings: object) -> VirtualBoard:
        device_id = str(settings.get("device_id") or f"vb{uuid.uuid4().hex[:6]}")  # a test may name it
        with self._lock:
            index = len(self.record.boards)
            self.record.masker.add_from_settings({**self.settings, **settings})
            workdir = self.tmp_path / f"board{index}"
            workdir.mkdir(parents=True, exist_ok=True)
            flash_path = workdir / "flash.bin"
            board = VirtualBoard(device_id, flash_path, workdir, mac=f"240ac4{index + 1:06x}")
            board.flash_timing = self.flash_timing
            self.record.add_board(board)
        create_flash(flash_path, self.firmware.project.partitions_csv.read_text())
        build = self.firmware.build(variant)
        board.flash(image if image is not None else build.image, bootloader=build.bootloader)
        board.mesh = self.mesh
        board.power_on()
        values = {"device_id": device_id, "broker_url": self.broker_url,
                  "topic_prefix": self.firmware.project.topic_prefix, **self.settings, **settings}
        bring_up(board, self.link, values, boot_timeout=BOOT_TIMEOUT_S,
                 base=(self.firmware.base_version, "ota_0") if image is None else None)
        return board

    def stop_all(self) -> None:
        for board in self.record.boards:
            board.stop()
