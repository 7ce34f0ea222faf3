"""RFC 6238 codes, computed here independently of the library under test."""

import base64
import hashlib
import hmac
import struct
import time


def totp(secret, offset=0, period=30, digits=6):
    """The code for now (``offset`` periods later)."""
    counter = int(time.time()) // period + offset
    digest = hmac.new(base64.b32decode(secret, casefold=True), struct.pack(">Q", counter), hashlib.sha1).digest()
    start = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[start : start + 4])[0] & 0x7FFFFFFF
    return "%0*d" % (digits, value % 10**digits)
