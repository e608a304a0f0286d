"""Asterisk Manager Interface: a sans-IO client core (``protocol``) and a reconnecting asyncio client."""

from pbx.ami.client import AmiClient, AmiNotConnected
from pbx.ami.protocol import NEED_DATA, AmiClientConnection, Banner, Closed, Message, NeedData, encode_action

__all__ = [
    "NEED_DATA",
    "AmiClient",
    "AmiClientConnection",
    "AmiNotConnected",
    "Banner",
    "Closed",
    "Message",
    "NeedData",
    "encode_action",
]
