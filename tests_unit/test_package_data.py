"""Where the harness finds the firmware sources it ships (harness.package_data), here in a checkout."""

from __future__ import annotations

from pathlib import Path

from harness import package_data, project

ROOT = Path(__file__).resolve().parents[1]


def test_in_a_checkout_the_sources_are_the_repository_s_own() -> None:
    """harness/data's symlinks resolved: the paths the builds in build/virtual were configured with."""
    assert package_data.source_checkout() == ROOT
    assert package_data.REFERENCE_APP_DIR == ROOT / "device"
    assert package_data.REFERENCE_SDKCONFIG_DEFAULTS == ROOT / "sdkconfig.defaults"
    assert package_data.HOST_PORT_DIR == ROOT / "device" / "port" / "linux"
    assert package_data.missing_host_port_files() == []


def test_the_reference_project_is_the_shipped_firmware() -> None:
    reference = project.reference()
    assert reference.app_dir == package_data.REFERENCE_APP_DIR
    assert reference.sdkconfig_defaults == (package_data.REFERENCE_SDKCONFIG_DEFAULTS,)
    reference.check()
