"""The stream's wire format, shared by the server and the client.

`GET /firehose/stream` answers NDJSON: each line is either an event exactly as the log holds it
(`{"type": "post" | "delete", "id", "post", "seq"}`) or a control frame, whose first key is
`"control"`. An event line always begins `{"type"`, so a reader finds control frames by their
first bytes without decoding a thing. `next` in a frame is where to resume: the cursor (inclusive)
after everything this connection has delivered or filtered out.
"""

from __future__ import annotations

from typing import Literal

import msgspec

FinalReason = Literal["cursor_too_old", "consumer_too_slow", "credential_revoked", "server_shutdown"]

CONTROL_PREFIX = b'{"control":'


class Heartbeat(msgspec.Struct, tag_field="control", tag="heartbeat"):
    """Sent when nothing else has been for a while: the log's head, and where to resume."""

    head: int
    next: int


class Final(msgspec.Struct, tag_field="control", tag="final"):
    """The last line of a stream: why it ends and where to resume."""

    reason: FinalReason
    next: int
    head: int
    message: str = ""


Control = Heartbeat | Final

_encoder = msgspec.json.Encoder()
_control_decoder = msgspec.json.Decoder(Control)


def encode_control(frame: Control) -> bytes:
    """One NDJSON line for a control frame."""
    return _encoder.encode(frame) + b"\n"


def decode_control(line: bytes) -> Control:
    return _control_decoder.decode(line)


def has_control(block: bytes) -> bool:
    """Whether a block of whole lines holds a control frame (JSON strings escape newlines, so
    a newline followed by the prefix can only be a line boundary)."""
    return block.startswith(CONTROL_PREFIX) or b"\n" + CONTROL_PREFIX in block
