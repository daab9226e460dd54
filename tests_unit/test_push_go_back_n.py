"""The pusher's go-back-N rules (harness/push.py, Pusher._take_acks), acknowledgement by acknowledgement.

The catalog's push scenarios show them end to end against the firmware, where timing decides which
acknowledgements arrive together; here each rule is fed the acknowledgements it answers, without a broker.
"""

from __future__ import annotations

import time

import pytest

from harness.push import Pusher, _Sender

CHUNK = 4096


@pytest.fixture
def pusher() -> Pusher:
    """Never connected: _take_acks only reads the sender's state and the pusher's settings."""
    return Pusher("mqtt://127.0.0.1:1", "d1", window=4, chunk=CHUNK, ack_timeout=2.0)


def sent(upto_chunks: int, acked_chunks: int = 0) -> _Sender:
    """A sender that published chunks [0, upto) and heard the device acknowledge up to `acked`."""
    return _Sender(size=64 * CHUNK, window=4, acked=acked_chunks * CHUNK, sent_upto=upto_chunks * CHUNK)


def test_an_advancing_acknowledgement_moves_the_window_and_reports_progress() -> None:
    progress: list[tuple[int, int]] = []
    pusher = Pusher("mqtt://127.0.0.1:1", "d1", window=4, chunk=CHUNK, on_progress=lambda a, s: progress.append((a, s)))
    sender = sent(4)
    pusher._take_acks(sender, [(CHUNK, None), (2 * CHUNK, None)])
    assert (sender.acked, sender.sent_upto, sender.rewinds) == (2 * CHUNK, 4 * CHUNK, 0)
    assert progress == [(CHUNK, 64 * CHUNK), (2 * CHUNK, 64 * CHUNK)]


def test_a_gap_sends_again_from_the_device_s_next_once(pusher: Pusher) -> None:
    """Chunk 1 lost: the device ignores 2 and 3, answering `next` 1 for each; one rewind, not one per answer,
    also when the answer for 3 comes after the window was sent again from 1."""
    sender = sent(4, acked_chunks=1)
    pusher._take_acks(sender, [(CHUNK, 2 * CHUNK)])
    assert (sender.sent_upto, sender.rewinds) == (CHUNK, 1)
    sender.sent_upto = 5 * CHUNK  # chunks 1 to 4 published again
    pusher._take_acks(sender, [(CHUNK, 3 * CHUNK)])
    assert (sender.sent_upto, sender.rewinds) == (5 * CHUNK, 1)


def test_a_duplicate_changes_nothing(pusher: Pusher) -> None:
    """The device ignored a chunk it had written already (`ignored` below `next`)."""
    sender = sent(4, acked_chunks=3)
    pusher._take_acks(sender, [(3 * CHUNK, CHUNK)])
    assert (sender.acked, sender.sent_upto, sender.rewinds) == (3 * CHUNK, 4 * CHUNK, 0)


def test_an_acknowledgement_repeated_after_a_reconnect_resumes_from_it(pusher: Pusher) -> None:
    """After a broker restart the device says its `next` again of its own accord (no `ignored`): the chunks in
    flight were lost with the connection, so the pusher goes back there."""
    sender = sent(6, acked_chunks=2)
    pusher._take_acks(sender, [(2 * CHUNK, None)])
    assert (sender.sent_upto, sender.rewinds, sender.stall_rewinds) == (2 * CHUNK, 1, 0)


def test_no_progress_for_ack_timeout_with_chunks_out_goes_back_to_the_acknowledged_offset(pusher: Pusher) -> None:
    sender = sent(4, acked_chunks=1)
    sender.last_progress_at = time.monotonic() - pusher.ack_timeout
    pusher._take_acks(sender, [])
    assert (sender.sent_upto, sender.rewinds, sender.stall_rewinds) == (CHUNK, 0, 1)
    pusher._take_acks(sender, [])  # the timer started again: no second stall rewind at once
    assert sender.stall_rewinds == 1
