"""macOS version and build numbers, parsed so they compare the way Apple numbers them.

Versions compare numerically, part by part, with missing parts as zero: 10.9 < 10.10 < 10.12.4 <
11 < 14.7.1 < 15.0 = 15. A Rapid Security Response suffix such as "14.7.1 (a)" sorts after
14.7.1 and before 14.7.2, and "(b)" after "(a)". A build in parentheses ("14.7.1 (23H222)") is
accepted and ignored: the version decides.

Builds (Intune's "minimum OS build version") compare as Apple issues them: the major number
(23), the train letter (H), the build number (222), then a lowercase suffix (RSR or beta), so
22E252 < 22E772610a < 22F66.

Anything else ("", "15.1 beta", "unknown") raises :class:`UnparseableVersion`; the rules that
use it fail with that reason instead of passing.
"""

import functools
import re
from typing import NamedTuple

_PREFIX_RE = re.compile(r"^(?:mac\s*os(?:\s*x)?|os\s*x)\s+", re.IGNORECASE)
_VERSION_RE = re.compile(
    r"""^(?P<numbers>\d{1,4}(?:\.\d{1,4}){0,3})      # 10.12.4, 15, 14.7.1
        (?:\s*\((?P<rsr>[a-z])\))?                  # Rapid Security Response: (a)
        (?:\s*\((?P<build>\d{2}[A-Z]\d{1,9}[a-z]?)\))?  # a build in parentheses: (23H222)
        $""",
    re.VERBOSE,
)
_BUILD_RE = re.compile(r"^(?P<major>\d{1,3})(?P<train>[A-Z])(?P<number>\d{1,9})(?P<suffix>[a-z]?)$")


class UnparseableVersion(ValueError):
    """The text is not a macOS version (or build) this module can compare."""


class OSVersion(NamedTuple):
    """A comparable macOS version: (major, minor, patch, rsr) with rsr 0 for none, 1 for (a), ..."""

    major: int
    minor: int
    patch: int
    rsr: int

    def __str__(self):
        text = "%d.%d" % (self.major, self.minor)
        if self.patch:
            text += ".%d" % self.patch
        if self.rsr:
            text += " (%s)" % chr(ord("a") + self.rsr - 1)
        return text


class OSBuild(NamedTuple):
    """A comparable macOS build number such as 23H222 or 22E772610a."""

    major: int
    train: str
    number: int
    suffix: str

    def __str__(self):
        return "%d%s%d%s" % self


@functools.lru_cache(maxsize=4096)
def parse_version(text):
    """Parse a macOS version string; raises :class:`UnparseableVersion`."""
    if text is None:
        raise UnparseableVersion("no version was reported")
    cleaned = _PREFIX_RE.sub("", str(text).strip())
    match = _VERSION_RE.match(cleaned)
    if not match:
        raise UnparseableVersion("%r is not a macOS version" % str(text))
    parts = [int(part) for part in match["numbers"].split(".")]
    if len(parts) > 3 and any(parts[3:]):
        raise UnparseableVersion("%r has more parts than a macOS version" % str(text))
    parts = (parts + [0, 0, 0])[:3]
    rsr = ord(match["rsr"]) - ord("a") + 1 if match["rsr"] else 0
    return OSVersion(parts[0], parts[1], parts[2], rsr)


@functools.lru_cache(maxsize=4096)
def parse_build(text):
    """Parse a macOS build number; raises :class:`UnparseableVersion`."""
    if text is None:
        raise UnparseableVersion("no build was reported")
    match = _BUILD_RE.match(str(text).strip())
    if not match:
        raise UnparseableVersion("%r is not a macOS build" % str(text))
    return OSBuild(int(match["major"]), match["train"], int(match["number"]), match["suffix"])


def is_valid_version(text):
    try:
        parse_version(text)
    except UnparseableVersion:
        return False
    return True


def is_valid_build(text):
    try:
        parse_build(text)
    except UnparseableVersion:
        return False
    return True
