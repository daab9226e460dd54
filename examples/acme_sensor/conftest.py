"""Our release gate: the esp-ota-hil plugin gives the fixtures, pytest.ini points it at our app."""
import pytest

NEXT_VERSION = "1.5.0"


@pytest.fixture
def release_image(firmware):
    """What we are about to ship: our app, reporting the next version."""
    return firmware.image(version=NEXT_VERSION)
