"""idf.py-style builds whose app is the virtual board's firmware, for a virtual ESP32 on RFC2217.

``--target esp32`` flashes the ``build_<target>_<variant>/`` directories of ``--app-path`` (what ``idf.py
build`` leaves, read through ``flasher_args.json``). A virtual ESP32 (harness/farm/virtual_esp32.py, a farm's
virtual bench) runs virtual-board images, so the gate run over virtual places flashes these builds instead:
an ESP32 bootloader stand-in, the reference partition table, and the virtual build of each variant as the
app. ``python -m harness farm builds DIR`` writes them.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness import project
from harness.formats import app_image
from harness.formats import partition_table as pt


def esp32_bootloader_image() -> bytes:
    """A stand-in for bootloader/bootloader.bin: an ESP32 image (esptool checks the chip id at 0x1000)."""
    return app_image.AppImage(chip_id=app_image.CHIP_ID_ESP32, entry_addr=0x40080400,
                           segments=[app_image.Segment(0x3FFF0000, bytes(range(256)) * 16)]).to_bytes()


def write_idf_build(device_dir: Path, app: bytes, target: str = "esp32", variant: str = "default",
                    bootloader: bytes | None = None) -> Path:
    """A build directory laid out as ``idf.py -B build_<target>_<variant> build`` leaves it."""
    build = Path(device_dir) / f"build_{target}_{variant}"
    (build / "bootloader").mkdir(parents=True, exist_ok=True)
    (build / "partition_table").mkdir(parents=True, exist_ok=True)
    if variant != "default":
        (Path(device_dir) / f"sdkconfig.ci.{variant}").touch()
    (build / "bootloader" / "bootloader.bin").write_bytes(bootloader or esp32_bootloader_image())
    parts = pt.parse_csv(project.reference().partitions_csv.read_text())
    (build / "partition_table" / "partition-table.bin").write_bytes(pt.to_binary(parts, pad_to_sector=False))
    (build / "hil_ota_agent.bin").write_bytes(app)
    (build / "ota_data_initial.bin").write_bytes(b"\xff" * 0x2000)
    ota_0 = pt.ota_slots(parts)[0].offset
    otadata = pt.otadata_partition(parts).offset
    files = {"0x1000": "bootloader/bootloader.bin", "0x8000": "partition_table/partition-table.bin",
             f"{otadata:#x}": "ota_data_initial.bin", f"{ota_0:#x}": "hil_ota_agent.bin"}
    (build / "flasher_args.json").write_text(json.dumps({
        "write_flash_args": ["--flash_mode", "dio", "--flash_size", "4MB", "--flash_freq", "40m"],
        "flash_settings": {"flash_mode": "dio", "flash_size": "4MB", "flash_freq": "40m"},
        "flash_files": files,
        "bootloader": {"offset": "0x1000", "file": "bootloader/bootloader.bin", "encrypted": "false"},
        "app": {"offset": f"{ota_0:#x}", "file": "hil_ota_agent.bin", "encrypted": "false"},
        "partition-table": {"offset": "0x8000", "file": "partition_table/partition-table.bin", "encrypted": "false"},
        "otadata": {"offset": f"{otadata:#x}", "file": "ota_data_initial.bin", "encrypted": "false"},
        "extra_esptool_args": {"after": "hard_reset", "before": "default_reset", "stub": True, "chip": target},
    }, indent=4))
    return build


def write_virtual_builds(device_dir: Path, variants: list[str] | None = None) -> list[Path]:
    """One build per variant (default: every variant of the reference firmware), its app the virtual build."""
    from harness.virtual import firmware

    return [write_idf_build(device_dir, firmware.build(v).image, variant=v)
            for v in (variants or list(project.reference().variants))]
