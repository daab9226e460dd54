"""The signature check of esp_ota_end() on the host (docs/performance.md): `python bench/bench_signature.py`.

With the `signed` build's port (CONFIG_SECURE_SIGNED_ON_UPDATE_NO_SECURE_BOOT), port_check's `sigcheck`
command runs esp_secure_boot_verify_signature() on a signed image in ota_1 n times, the running app in ota_0
signed with the same key: the SHA-256 of the image padded to 4 KB, the trusted-key lookup in the running app's
signature block, and the RSA-3072 PSS verification (device/port/linux/src/esp_secure_boot.c). Two images:
the signed firmware itself and a 1 MiB one (the check is a hash of the image plus one RSA operation).
The key is made for the run in a temporary directory.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import Result, report, verdict

from harness.formats import app_image, signing
from harness.virtual import firmware
from harness.virtual.flash import Flash

CSV = (firmware.DEVICE_DIR / "partitions.csv").read_text()
REPEATS = 50
TARGET_MS = 20.0  # per check of a 1 MiB image: small beside the download it ends


def _sigcheck(exe: Path, flash_path: Path, n: int) -> dict[str, str]:
    proc = subprocess.run([str(exe)], input=f"sigcheck ota_1 {n}\n", capture_output=True, text=True, timeout=120,
                          env={"HIL_FLASH_FILE": str(flash_path), "HIL_APP_OFFSET": "0x20000"}, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("sigcheck ")), None)
    if line is None:
        raise SystemExit(f"port_check printed no sigcheck line:\n{proc.stdout[-2000:]}")
    return dict(re.findall(r"(\w+)=(\S+)", line))


def main() -> int:
    # no options; --help says what it measures instead of running it
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    exe = firmware.build_port_check("signed")
    base = firmware.build("signed").image
    with tempfile.TemporaryDirectory(prefix="bench-sig-") as tmp:
        key = signing.generate_key(Path(tmp) / "key.pem")
        started = time.perf_counter()
        running = signing.sign(base, key)
        sign_ms = (time.perf_counter() - started) * 1000
        big = app_image.build_virtual_image(b"\x7fELF" + bytes(1024 * 1024 - 4), version="2.0.0",
                                            project_name="hil_ota_agent")
        for name, image in (("the signed firmware", signing.sign(app_image.patch_version(base, "2.0.0"), key)),
                            ("a 1 MiB image", signing.sign(big, key))):
            flash_path = Path(tmp) / "flash.bin"
            flash_path.unlink(missing_ok=True)
            with Flash.create(flash_path, CSV) as flash:
                parts = {p.label: p for p in flash.partitions()}
                flash.write(parts["ota_0"].offset, running)
                flash.write(parts["ota_1"].offset, image)
            found = _sigcheck(exe, flash_path, REPEATS)
            if found.get("result") != "ESP_OK":
                raise SystemExit(f"the signature check failed: {found}")
            mean_ms, min_ms = int(found["mean_us"]) / 1000, int(found["min_us"]) / 1000
            size_kib = int(found["image_len"]) / 1024
            big_one = name.startswith("a 1 MiB")
            report(Result(f"signature check of {name} ({size_kib:.0f} KiB), {REPEATS} runs",
                          f"mean {mean_ms:.2f} ms, min {min_ms:.2f} ms",
                          f"< {TARGET_MS:.0f} ms" if big_one else "", (mean_ms < TARGET_MS) if big_one else None))
        report(Result("espsecure sign-data of the firmware (harness side, one run)", f"{sign_ms:.0f} ms"))
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
