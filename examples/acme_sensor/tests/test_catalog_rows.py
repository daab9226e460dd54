"""The rows of the esp-ota-hil catalog that apply to the ACME sensor, run unchanged against it.

The sensor takes its updates through the ota_agent component's own downloader, so the transport,
integrity, version and manifest rows all apply (pytest collects the imported test functions here). Left
out: the rows that need the reference firmware's test variants (self-test failure, crash on boot, slow
self-test: this app has its own broken_selftest, in test_release.py) or its partition sizes (the
too-large image).
"""

from tests_hil.test_integrity import (
    test_bad_image_is_refused,
    test_matching_sha256_and_size_install,
    test_sha256_mismatch_is_refused,
    test_size_mismatch_is_refused,
    test_wrong_chip_is_refused,
)
from tests_hil.test_manifest import test_check_command_installs_a_newer_version
from tests_hil.test_transport import (
    test_404_fails_without_retrying,
    test_503_a_few_times_then_success,
    test_chunked_without_content_length_installs,
    test_dropped_connection_resumes_with_range,
    test_redirect_chain_installs,
    test_stalled_server_gives_idle_timeout,
)
from tests_hil.test_update_to_new_version import test_update_to_new_version
from tests_hil.test_versions import test_downgrade_is_refused_unless_forced, test_same_version_is_refused

__all__ = [
    "test_404_fails_without_retrying",
    "test_503_a_few_times_then_success",
    "test_bad_image_is_refused",
    "test_check_command_installs_a_newer_version",
    "test_chunked_without_content_length_installs",
    "test_downgrade_is_refused_unless_forced",
    "test_dropped_connection_resumes_with_range",
    "test_matching_sha256_and_size_install",
    "test_redirect_chain_installs",
    "test_same_version_is_refused",
    "test_sha256_mismatch_is_refused",
    "test_size_mismatch_is_refused",
    "test_stalled_server_gives_idle_timeout",
    "test_update_to_new_version",
    "test_wrong_chip_is_refused",
]
