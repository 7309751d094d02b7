"""The gateway's exceptions, one tree.

    GatewayError
    ├── ProtocolError           the device sent something the protocol does not allow (answer it, keep reading)
    │   ├── FramingError        no valid frame boundary, or a frame too long to be real
    │   ├── ChecksumError       CRC mismatch
    │   ├── LengthError         the length field disagrees with the frame
    │   ├── DecryptError        encrypted content that the account's key cannot open (or no key)
    │   ├── UnsupportedMessage  a well-formed frame of a type this receiver does not handle
    │   └── NotAnAmiPeer        the far end of a PBX link did not greet us as an Asterisk manager interface
    ├── PbxError                the PBX link (gateway.amilink) could not do what was asked
    │   ├── PbxNotConnected     no live, logged-in link to the PBX right now
    │   ├── LoginRefused        the PBX refused our manager login (user or secret wrong, or not permitted)
    │   ├── ActionFailed        the PBX answered an action with "Response: Error" (``message`` says why)
    │   │   └── OriginateRefused  ... that action was a click-to-call Originate
    │   └── PeerTimeout         the PBX did not answer in time (a dead peer, or a hung action)
    └── UsageError              the codec was called wrongly (a bug on our side, not the device's)
        └── HeaderInjection     an AMI header name or value holding CR or LF (it would forge headers)

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


class NotAnAmiPeer(ProtocolError):
    """The first line from a PBX link was not an ``Asterisk Call Manager/<version>`` banner."""


class PbxError(GatewayError):
    """The PBX link could not do what was asked."""


class PbxNotConnected(PbxError):
    pass


class LoginRefused(PbxError):
    pass


class ActionFailed(PbxError):
    """The PBX answered an action with ``Response: Error``; ``message`` is its ``Message`` header."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message


class OriginateRefused(ActionFailed):
    pass


class PeerTimeout(PbxError):
    pass


class UsageError(GatewayError):
    """The codec was called wrongly."""


class HeaderInjection(UsageError):
    """An AMI header name or value holds CR or LF: sent as is it would end the header and forge others."""
