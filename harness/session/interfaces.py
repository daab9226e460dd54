"""What the fixtures hand a scenario, typed, whichever target runs: a firmware source and a board factory.

The virtual target implements them in harness/virtual (`VirtualFirmware`, `VirtualBoardFactory`), a real
ESP32 in harness/boards (`IdfFirmware`, `Esp32BoardFactory`); scenarios see only these interfaces and the
`Board` one (harness/boards/base.py).
"""

from __future__ import annotations

from typing import Protocol

from harness.boards.base import Board
from harness.formats.signing import SigningKey
from harness.panic_decoder import Symbols


class FirmwareSource(Protocol):
    """Builds of the firmware under test, by variant (sdkconfig.ci.<variant>), made on first use."""

    def image(self, variant: str = ..., version: str | None = None, *, secure_version: int | None = None,
              sign_with: SigningKey | None = None) -> bytes:
        """An app image of a variant; with `version` or `secure_version`, its descriptor patched to say so;
        with `sign_with`, signed with that key (a Secure Boot V2 signature sector, espsecure's)."""
        ...

    @property
    def base_version(self) -> str:
        """The version the default variant reports (what every board starts on)."""
        ...

    def panic_symbols(self) -> Symbols:
        """What decodes the boards' `Backtrace:` lines: the ELFs of the builds used so far, the addr2line."""
        ...


class BoardFactory(Protocol):
    """Boards on the base firmware (or `image`), provisioned with `settings`, connected; all stopped at the
    end of the test. `variant`: the board is flashed with that build's bootloader (and, without `image`,
    its app), as `idf.py flash` of the variant's build would."""

    def __call__(self, image: bytes | None = None, *, variant: str = ..., **settings: object) -> Board: ...

    def stop_all(self) -> None: ...
