"""ESP-IDF's binary formats, shared by the virtual board and the real-board path.

- ``app_image``: the app image (``esp_image_header_t``, segments, checksum, SHA-256, ``esp_app_desc_t``):
  build, verify, patch the version, damage on purpose.
- ``partition_table``: ``partitions.csv`` to the binary table and back, with gen_esp32part.py's rules.
- ``otadata``: the two ``esp_ota_select_entry_t`` records that pick the boot slot.
"""
