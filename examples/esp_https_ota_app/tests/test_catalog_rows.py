"""The rows of the esp-ota-hil catalog that apply to an app that installs with esp_https_ota itself.

They run unchanged against this app (pytest collects the imported test functions here). Left out: what
the ota_agent's own downloader adds and esp_https_ota does not do (resuming a dropped download with
Range, retries after a 5xx, idle and overall deadlines, the command's sha256 and size), and the rows that
need the reference firmware's test variants.
"""

from tests_hil.test_integrity import test_bad_image_is_refused, test_wrong_chip_is_refused
from tests_hil.test_transport import (
    test_404_fails_without_retrying,
    test_chunked_without_content_length_installs,
    test_redirect_chain_installs,
    test_unreachable_host_gives_connect_failed,
)
from tests_hil.test_update_to_new_version import test_update_to_new_version

__all__ = [
    "test_404_fails_without_retrying",
    "test_bad_image_is_refused",
    "test_chunked_without_content_length_installs",
    "test_redirect_chain_installs",
    "test_unreachable_host_gives_connect_failed",
    "test_update_to_new_version",
    "test_wrong_chip_is_refused",
]
