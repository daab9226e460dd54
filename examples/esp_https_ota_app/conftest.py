"""The HTTPS OTA meter's release gate: the esp-ota-hil plugin gives the fixtures, pytest.ini our app."""
