"""The gateway's exceptions, one tree.

    GatewayError
    ├── ProtocolError           the device sent something the protocol does not allow (answer it, keep reading)
    │   ├── FramingError        no valid frame boundary, or a frame too long to be real
    │   ├── ChecksumError       CRC mismatch
    │   ├── LengthError         the length field disagrees with the frame
    │   ├── DecryptError        encrypted content that the account's key cannot open (or no key)
    │   └── UnsupportedMessage  a well-formed frame of a type this receiver does not handle
    └── UsageError              the codec was called wrongly (a bug on our side, not the device's)

"The peer sent garbage" never kills a connection: the codec turns a ProtocolError into the protocol's
negative answer (NAK, DUH, or silence) and a counted reason, and keeps reading.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error raised on purpose by the gateway."""


class ProtocolError(GatewayError):
    """The device sent something the protocol does not allow."""


class FramingError(ProtocolError):
    pass


class ChecksumError(ProtocolError):
    pass


class LengthError(ProtocolError):
    pass


class DecryptError(ProtocolError):
    pass


class UnsupportedMessage(ProtocolError):
    pass


class UsageError(GatewayError):
    """The codec was called wrongly."""
