"""Command line: ``python -m harness <command>``.

  build                      build the virtual-board firmware (every variant the catalog uses)
  image info FILE            show an app image's header, version, checksum and hash
  image patch-version FILE VERSION -o OUT
                             rewrite the app version (checksum and hash fixed up)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import images
from harness.virtual import firmware

VARIANTS = ("default", "selftest_fail", "crash_on_boot")


def cmd_build(args: argparse.Namespace) -> int:
    for variant in args.variants or VARIANTS:
        build = firmware.build(variant)
        print(f"{variant}: {build.image_path} (version {build.version})")
    return 0


def cmd_image_info(args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    try:
        info = images.verify_image(data, None)
    except images.ImageError as err:
        print(f"{args.file}: not a valid app image ({err.reason}): {err}", file=sys.stderr)
        return 1
    chip = {images.CHIP_ID_ESP32: "esp32", images.CHIP_ID_VIRTUAL: "virtual"}.get(info.chip_id, str(info.chip_id))
    desc = info.descriptor
    print(f"file:      {args.file}")
    print(f"chip:      {chip} (id {info.chip_id:#06x})")
    print(f"length:    {info.length} bytes, {len(info.segments)} segments")
    if desc is not None:
        print(f"project:   {desc.project_name}")
        print(f"version:   {desc.version}")
        print(f"idf:       {desc.idf_ver}")
    print("checksum:  valid")
    print(f"sha256:    {info.sha256.hex() if info.sha256 else 'not appended'}")
    return 0


def cmd_image_patch_version(args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    try:
        patched = images.patch_version(data, args.version)
    except (images.ImageError, ValueError) as err:
        print(f"{args.file}: cannot patch: {err}", file=sys.stderr)
        return 1
    Path(args.output).write_bytes(patched)
    print(f"{args.output}: version {args.version}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness", description="OTA HIL harness tools.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the virtual-board firmware variants")
    b.add_argument("variants", nargs="*", help=f"variants to build (default: {', '.join(VARIANTS)})")
    b.set_defaults(func=cmd_build)
    image = sub.add_parser("image", help="inspect or modify ESP app images (ESP32 or virtual)")
    image_sub = image.add_subparsers(dest="image_command", required=True)
    info = image_sub.add_parser("info", help="verify an image and show its version")
    info.add_argument("file")
    info.set_defaults(func=cmd_image_info)
    patch = image_sub.add_parser("patch-version", help="rewrite the version in the app descriptor")
    patch.add_argument("file")
    patch.add_argument("version", help="new version, at most 31 characters")
    patch.add_argument("-o", "--output", required=True, help="where to write the patched image")
    patch.set_defaults(func=cmd_image_patch_version)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
