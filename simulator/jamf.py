"""A Jamf Pro server per tenant slug, under ``/jamf/<slug>/``, for the demo and the tests.

It serves the Macs of ``devices.jamf.samples.make_record`` deterministically: Mac ``n`` of tenant
``slug`` is the very Mac that ``demo_data`` imported, so a pull finds the demo fleet. Macs change
only through the knobs (``change``, ``add``, ``remove``), which return the Jamf webhooks that a real
Jamf Pro would send for those changes (``manage.py simulate_jamf`` posts them to the portal).

Endpoints (Jamf Pro API, as far as the portal uses it):

- ``POST /jamf/<slug>/api/oauth/token`` (and ``/api/v1/oauth/token``): client credentials.
- ``GET  /jamf/<slug>/api/v1/jamf-pro-version``
- ``GET  /jamf/<slug>/api/v3/computers-inventory`` (and ``v4`` when the version is 11.30 or later):
  ``section`` (repeatable), ``page``, ``page-size``, ``sort``, RSQL ``filter`` on ``id``, ``udid``,
  ``general.reportDate``, ``general.name`` and ``hardware.serialNumber``.
- ``GET  /jamf/<slug>/api/v3/computers-inventory/<id>``

Control (``/_sim/jamf/<slug>/...``, JSON): ``configure`` (count, version, client_id, client_secret,
token_ttl, legacy_token_path), ``change`` (count, kind), ``add`` (count), ``remove`` (ids), ``revoke``.
Extra fault knob: ``jamf_fail_pages`` = a list of page numbers that answer 500.
"""

import copy
import datetime
import random
import re
import secrets
import threading
import time

from devices.jamf.samples import OS_VERSIONS, make_record
from simulator.app import SERVICE_FACTORIES
from simulator.core import HttpError, Response

SLUG = r"(?P<slug>[-a-zA-Z0-9_]+)"
ALL_SECTIONS = {
    "GENERAL": "general", "HARDWARE": "hardware", "OPERATING_SYSTEM": "operatingSystem", "SECURITY": "security",
    "DISK_ENCRYPTION": "diskEncryption", "LOCAL_USER_ACCOUNTS": "localUserAccounts",
    "USER_AND_LOCATION": "userAndLocation", "APPLICATIONS": "applications", "PURCHASING": "purchasing",
    "PRINTERS": "printers", "STORAGE": "storage", "EXTENSION_ATTRIBUTES": "extensionAttributes",
    "GROUP_MEMBERSHIPS": "groupMemberships", "CONFIGURATION_PROFILES": "configurationProfiles",
    "CERTIFICATES": "certificates", "SERVICES": "services", "ATTACHMENTS": "attachments", "PLUGINS": "plugins",
    "PACKAGE_RECEIPTS": "packageReceipts", "FONTS": "fonts", "IBEACONS": "ibeacons",
    "SOFTWARE_UPDATES": "softwareUpdates", "CONTENT_CACHING": "contentCaching", "LICENSED_SOFTWARE":
    "licensedSoftware",
}
LIST_SECTIONS = {
    "localUserAccounts", "applications", "printers", "extensionAttributes", "groupMemberships",
    "configurationProfiles", "certificates", "services", "attachments", "plugins", "fonts", "ibeacons",
    "softwareUpdates", "licensedSoftware",
}
MAX_PAGE_SIZE = 2000
V4_VERSION = (11, 30)
RSQL_CLAUSE = re.compile(
    r"^\s*(?P<field>[A-Za-z.]+)\s*(?P<op>==|!=|>=|<=|=ge=|=le=|=gt=|=lt=|>|<)\s*(?P<value>.+?)\s*$"
)
RSQL_OPS = {"=ge=": ">=", "=le=": "<=", "=gt=": ">", "=lt=": "<"}
FILTER_FIELDS = {
    "id": lambda r: int(r["id"]),
    "udid": lambda r: r["udid"],
    "general.reportDate": lambda r: _parse_time(r["general"]["reportDate"]),
    "general.name": lambda r: r["general"]["name"],
    "hardware.serialNumber": lambda r: r["hardware"]["serialNumber"],
}
SORT_FIELDS = {"id", "general.reportDate", "general.name"}


def credentials_for(slug):
    """The API client the simulated Jamf Pro of ``slug`` accepts by default (used by demo_data)."""
    return "portal-%s" % slug, "sim-jamf-secret-%s" % slug


def demo_fleets():
    """slug -> number of Macs, from the demo tenants."""
    from portal.management.commands.demo_data import TENANTS

    return {slug: count for slug, _name, _domain, count, *_rest in TENANTS}


def _iso(dt):
    return dt.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_time(text):
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def webhook_body(event, record, timestamp=None, webhook_id=1, shape=None):
    """The Jamf Pro webhook for ``event`` about ``record`` (a computers-inventory record).

    Jamf Pro puts the computer's fields flat in ``event`` for ComputerAdded and
    ComputerInventoryCompleted, and under ``event.computer`` for ComputerCheckIn and
    ComputerPolicyFinished (design section 7). ``shape`` ("flat" or "nested") forces one.
    """
    timestamp = timestamp or datetime.datetime.now(datetime.UTC)
    general, hardware = record.get("general", {}), record.get("hardware", {})
    os_section, location = record.get("operatingSystem", {}), record.get("userAndLocation", {})
    computer = {
        "jssID": int(record["id"]) if str(record["id"]).isdigit() else record["id"],
        "udid": record.get("udid", ""),
        "serialNumber": hardware.get("serialNumber", ""),
        "deviceName": general.get("name", ""),
        "model": hardware.get("model", ""),
        "osVersion": os_section.get("version", ""),
        "osBuild": os_section.get("build", ""),
        "macAddress": hardware.get("macAddress", ""),
        "alternateMacAddress": hardware.get("altMacAddress", ""),
        "username": location.get("username", ""),
        "realName": location.get("realname", ""),
        "emailAddress": location.get("email", ""),
        "phone": location.get("phone", ""),
        "position": location.get("position", ""),
        "department": "",
        "building": "",
        "room": location.get("room", ""),
        "userDirectoryID": "-1",
        "managementId": general.get("managementId", ""),
    }
    nested = shape == "nested" or (shape is None and event in ("ComputerCheckIn", "ComputerPolicyFinished"))
    if nested:
        payload = {"computer": computer}
        if event == "ComputerCheckIn":
            payload["trigger"] = "CLIENT_CHECKIN"
            payload["username"] = computer["username"]
        elif event == "ComputerPolicyFinished":
            payload.update(policyId=12, successful=True)
    else:
        payload = dict(computer, trigger="RECURRING_CHECK_IN" if event == "ComputerInventoryCompleted" else "")
    return {
        "webhook": {
            "id": webhook_id,
            "name": "Portal %s" % event,
            "webhookEvent": event,
            "eventTimestamp": int(timestamp.timestamp() * 1000),
        },
        "event": payload,
    }


class JamfServer:
    """The state of one simulated Jamf Pro: Macs 1..count (minus removals), with changes on top."""

    def __init__(self, slug, count=0, version="11.29.0", client_id=None, client_secret=None, token_ttl=1200,
                 legacy_token_path=False):
        default_id, default_secret = credentials_for(slug)
        self.slug = slug
        self.count = int(count)
        self.version = version
        self.client_id = client_id or default_id
        self.client_secret = client_secret or default_secret
        self.token_ttl = float(token_ttl)
        self.legacy_token_path = bool(legacy_token_path)
        self.epoch = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        self.overrides = {}  # int id -> v3 record, for Macs changed since the epoch
        self.removed = set()
        self.changes = 0
        self._dates = None  # int id -> reportDate, built on the first filtered request

    @property
    def serves_v4(self):
        try:
            major, minor = self.version.split("-")[0].split(".")[:2]
            return (int(major), int(minor)) >= V4_VERSION
        except ValueError:
            return False

    def ids(self):
        return [n for n in range(1, self.count + 1) if n not in self.removed]

    def record(self, n):
        """Mac ``n`` as a v3 record (a fresh copy the caller may change)."""
        if n in self.overrides:
            return copy.deepcopy(self.overrides[n])
        return make_record(n, self.slug, domain=self.slug + ".example", now=self.epoch)

    def report_dates(self):
        if self._dates is None:
            self._dates = {n: _parse_time(self.record(n)["general"]["reportDate"]) for n in self.ids()}
        return self._dates

    def store(self, n, record):
        self.overrides[n] = record
        if self._dates is not None:
            self._dates[n] = _parse_time(record["general"]["reportDate"])


def _as_version(record, api_version, sections):
    """The record as the given API version serves it, with only the requested sections."""
    out = {"id": record["id"], "udid": record["udid"]}
    for section in sections:
        key = ALL_SECTIONS[section]
        out[key] = record.get(key, [] if key in LIST_SECTIONS else None)
    general = out.get("general")
    if general is not None and api_version == "v4" and "lastContactTime" in general:
        general = dict(general)
        general["lastContact"] = general.pop("lastContactTime")
        out["general"] = general
    return out


class JamfService:
    """Jamf Pro servers keyed by slug; the demo tenants' servers exist from the start."""

    def __init__(self):
        self.lock = threading.RLock()
        self.sim = None
        self.reset()

    # -- state ------------------------------------------------------------------------------

    def reset(self):
        with self.lock:
            self.servers = {}
            self.tokens = {}  # token -> (slug, expires monotonic)
            self.in_flight = 0
            self.max_in_flight = 0
            self.requests = 0

    def configure(self, slug, **options):
        """Create (or re-create) the Jamf Pro of ``slug``; returns it."""
        with self.lock:
            server = JamfServer(slug, **options)
            self.servers[slug] = server
            return server

    def server(self, slug):
        with self.lock:
            server = self.servers.get(slug)
            if server is None:
                fleets = demo_fleets()
                if slug not in fleets:
                    raise HttpError(404, {"httpStatus": 404, "errors": [{"code": "NOT_FOUND",
                                                                         "description": "no Jamf Pro here"}]})
                # The demo's last tenant runs a Jamf Pro new enough for computers-inventory v4.
                version = "11.30.1" if slug == list(fleets)[-1] else "11.29.0"
                server = self.servers[slug] = JamfServer(slug, count=fleets[slug], version=version)
            return server

    def snapshot(self):
        with self.lock:
            return {
                "max_in_flight": self.max_in_flight,
                "requests": self.requests,
                "servers": {
                    slug: {"count": s.count, "version": s.version, "changed": len(s.overrides),
                           "removed": sorted(s.removed), "changes": s.changes}
                    for slug, s in self.servers.items()
                },
            }

    # -- knobs ------------------------------------------------------------------------------

    def change(self, slug, count=10, kind=None, seed=None):
        """Change ``count`` Macs as Jamf Pro would see them change; returns the webhooks it would send.

        ``kind``: "check_in" (only the last contact moves), "inventory" (an inventory update with a
        real change: OS update, FileVault, SIP, Company Portal, battery) or None for a mix.
        """
        with self.lock:
            server = self.server(slug)
            ids = server.ids()
            if not ids:
                return []
            server.changes += 1
            rng = random.Random("%s:%s:%d" % (slug, seed, server.changes) if seed is not None else None)
            picked = rng.sample(ids, min(int(count), len(ids)))
            now = datetime.datetime.now(datetime.UTC)
            events = []
            for n in picked:
                record = server.record(n)
                what = kind or ("check_in" if rng.random() < 0.7 else "inventory")
                record["general"]["lastContactTime"] = _iso(now)
                if what == "inventory":
                    record["general"]["reportDate"] = _iso(now)
                    _mutate(record, rng)
                    event = "ComputerInventoryCompleted"
                else:
                    event = "ComputerCheckIn"
                server.store(n, record)
                events.append(webhook_body(event, record, now))
            return events

    def add(self, slug, count=1):
        """Enroll new Macs; returns their ComputerAdded webhooks."""
        with self.lock:
            server = self.server(slug)
            now = datetime.datetime.now(datetime.UTC)
            events = []
            for _ in range(int(count)):
                server.count += 1
                n = server.count
                record = make_record(n, server.slug, domain=server.slug + ".example", now=now)
                record["general"]["reportDate"] = record["general"]["lastContactTime"] = _iso(now)
                server.store(n, record)
                events.append(webhook_body("ComputerAdded", record, now))
            return events

    def remove(self, slug, ids):
        """Delete Macs from this Jamf Pro (Jamf sends no webhook for that)."""
        with self.lock:
            server = self.server(slug)
            for n in ids:
                server.removed.add(int(n))
                server.overrides.pop(int(n), None)
                if server._dates is not None:
                    server._dates.pop(int(n), None)

    def revoke(self, slug):
        with self.lock:
            self.tokens = {t: v for t, v in self.tokens.items() if v[0] != slug}

    # -- routes -----------------------------------------------------------------------------

    def install(self, sim):
        self.sim = sim
        sim.route("POST", r"/jamf/%s/api/oauth/token" % SLUG, "jamf_token")(self._token)
        sim.route("POST", r"/jamf/%s/api/v1/oauth/token" % SLUG, "jamf_token_v1")(self._token_v1)
        sim.route("GET", r"/jamf/%s/api/v1/jamf-pro-version" % SLUG, "jamf_version")(self._version)
        sim.route("GET", r"/jamf/%s/api/(?P<api>v[34])/computers-inventory" % SLUG, "jamf_inventory")(
            self._inventory)
        sim.route("GET", r"/jamf/%s/api/(?P<api>v[34])/computers-inventory/(?P<jamf_id>[^/]+)" % SLUG,
                  "jamf_computer")(self._computer)
        sim.route("POST", r"/_sim/jamf/%s/(?P<action>configure|change|add|remove|revoke)" % SLUG, "jamf_control")(
            self._control)

    def _token(self, request, slug):
        if self.server(slug).legacy_token_path:
            raise HttpError(404, {"httpStatus": 404, "errors": [{"code": "NOT_FOUND"}]})
        return self._issue(request, slug)

    def _token_v1(self, request, slug):
        return self._issue(request, slug)

    def _issue(self, request, slug):
        server = self.server(slug)
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            raise HttpError(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != server.client_id or not secrets.compare_digest(
            form.get("client_secret", ""), server.client_secret
        ):
            raise HttpError(401, {"error": "invalid_client"})
        token = secrets.token_urlsafe(24)
        with self.lock:
            now = time.monotonic()
            self.tokens = {t: v for t, v in self.tokens.items() if v[1] > now}
            self.tokens[token] = (slug, now + server.token_ttl)
        return {"access_token": token, "scope": "api-role:1", "token_type": "Bearer",
                "expires_in": int(server.token_ttl) if server.token_ttl >= 1 else server.token_ttl}

    def _authorize(self, request, slug):
        entry = self.tokens.get(request.bearer)
        if entry is None or entry[0] != slug or entry[1] <= time.monotonic():
            raise HttpError(401, {"httpStatus": 401, "errors": [{"code": "INVALID_TOKEN"}]})
        return self.server(slug)

    def _version(self, request, slug):
        server = self._authorize(request, slug)
        return {"version": "%s-t1730000000000" % server.version}

    def _sections(self, request):
        names = []
        for value in request.args("section"):
            for name in value.split(","):
                name = name.strip().upper()
                if name and name not in ALL_SECTIONS:
                    raise HttpError(400, {"httpStatus": 400, "errors": [
                        {"code": "INVALID_FIELD", "field": "section", "description": "unknown section " + name}]})
                if name and name not in names:
                    names.append(name)
        return names or ["GENERAL"]  # Jamf Pro's default

    def _inventory(self, request, slug, api):
        server = self._authorize(request, slug)
        if api == "v4" and not server.serves_v4:
            raise HttpError(404, {"httpStatus": 404, "errors": [{"code": "NOT_FOUND"}]})
        sections = self._sections(request)
        try:
            page = int(request.arg("page", "0"))
            page_size = int(request.arg("page-size", "100"))
        except ValueError:
            raise HttpError(400, {"httpStatus": 400, "errors": [{"code": "INVALID_PARAMETER"}]}) from None
        if page < 0 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise HttpError(400, {"httpStatus": 400, "errors": [{"code": "INVALID_PARAMETER",
                                                                 "description": "page-size 1 to 2000"}]})
        if page in (self.sim.faults.extra.get("jamf_fail_pages") or []):
            raise HttpError(500, {"httpStatus": 500, "errors": [{"code": "INTERNAL_ERROR"}]})
        with self.lock:
            self.in_flight += 1
            self.requests += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            sort_key, reverse = self._sort(request.arg("sort", "id:asc"))
            rsql = request.arg("filter", "")
            with self.lock:
                ids = self._filtered_ids(server, server.ids(), rsql)
                if sort_key == "id":
                    ids = ids[::-1] if reverse else ids
                elif sort_key == "general.reportDate":
                    dates = server.report_dates()
                    ids = sorted(ids, key=dates.__getitem__, reverse=reverse)
                else:
                    names = {n: server.record(n)["general"]["name"] for n in ids}
                    ids = sorted(ids, key=names.__getitem__, reverse=reverse)
                total = len(ids)
                chosen = ids[page * page_size:(page + 1) * page_size]
                results = [_as_version(server.record(n), api, sections) for n in chosen]
            # A little time per record, so concurrency limits show up in max_in_flight.
            time.sleep(0.002)
            return {"totalCount": total, "results": results}
        finally:
            with self.lock:
                self.in_flight -= 1

    def _sort(self, text):
        key, _, direction = (text or "id:asc").split(",")[0].partition(":")
        if key not in SORT_FIELDS or direction.lower() not in ("", "asc", "desc"):
            raise HttpError(400, {"httpStatus": 400, "errors": [{"code": "INVALID_SORT", "description": text}]})
        return key, direction.lower() == "desc"

    def _filtered_ids(self, server, ids, rsql):
        if not rsql:
            return ids
        clauses = []
        for part in re.split(r";| and ", rsql):
            match = RSQL_CLAUSE.match(part)
            if not match or match["field"] not in FILTER_FIELDS:
                raise HttpError(400, {"httpStatus": 400, "errors": [{"code": "INVALID_RSQL", "description": part}]})
            op = RSQL_OPS.get(match["op"], match["op"])
            raw = match["value"].strip()
            if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
                raw = raw[1:-1]
            try:
                if match["field"] == "general.reportDate":
                    value = _parse_time(raw)
                elif match["field"] == "id":
                    value = int(raw)
                else:
                    value = raw
            except ValueError:
                raise HttpError(400, {"httpStatus": 400, "errors": [
                    {"code": "INVALID_RSQL", "description": "bad value %r" % raw}]}) from None
            clauses.append((match["field"], op, value))
        dates = server.report_dates() if any(f == "general.reportDate" for f, _, _ in clauses) else None
        compare = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">=": lambda a, b: a >= b,
                   "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}
        selected = []
        for n in ids:
            ok = True
            record = None
            for field, op, value in clauses:
                if field == "general.reportDate":
                    actual = dates[n]
                elif field == "id":
                    actual = n
                else:
                    record = record or server.record(n)
                    actual = FILTER_FIELDS[field](record)
                if not compare[op](actual, value):
                    ok = False
                    break
            if ok:
                selected.append(n)
        return selected

    def _computer(self, request, slug, api, jamf_id):
        server = self._authorize(request, slug)
        if api == "v4" and not server.serves_v4:
            raise HttpError(404, {"httpStatus": 404, "errors": [{"code": "NOT_FOUND"}]})
        with self.lock:
            if not jamf_id.isdigit() or int(jamf_id) not in set(server.ids()):
                raise HttpError(404, {"httpStatus": 404, "errors": [{"code": "NOT_FOUND"}]})
            record = server.record(int(jamf_id))
        return _as_version(record, api, self._sections(request))

    def _control(self, request, slug, action):
        options = request.json() or {}
        if not isinstance(options, dict):
            raise HttpError(400, {"error": "send a JSON object"})
        try:
            if action == "configure":
                server = self.configure(slug, **options)
                return {"slug": slug, "count": server.count, "version": server.version}
            if action == "change":
                return {"events": self.change(slug, options.get("count", 10), options.get("kind"),
                                              options.get("seed"))}
            if action == "add":
                return {"events": self.add(slug, options.get("count", 1))}
            if action == "remove":
                self.remove(slug, options.get("ids", []))
                return {"removed": len(options.get("ids", []))}
            self.revoke(slug)
            return Response(204)
        except (TypeError, ValueError) as exc:
            raise HttpError(400, {"error": str(exc)}) from None


def _mutate(record, rng):
    """One realistic inventory change."""
    what = rng.choice(["os", "filevault", "sip", "portal", "battery"])
    if what == "os":
        versions = [v for v, _ in OS_VERSIONS]
        current = record["operatingSystem"]["version"]
        index = versions.index(current) if current in versions else 0
        version, build = OS_VERSIONS[min(index + 1, len(OS_VERSIONS) - 1)]
        record["operatingSystem"].update(version=version, build=build, supplementalBuildVersion=build)
    elif what == "filevault":
        details = record["diskEncryption"]["bootPartitionEncryptionDetails"]
        encrypted = details["partitionFileVault2State"] == "ENCRYPTED"
        details["partitionFileVault2State"] = "UNENCRYPTED" if encrypted else "ENCRYPTED"
        details["partitionFileVault2Percent"] = 0 if encrypted else 100
        record["operatingSystem"]["fileVault2Status"] = "NOT_ENCRYPTED" if encrypted else "BOOT_ENCRYPTED"
    elif what == "sip":
        record["security"]["sipStatus"] = "DISABLED" if record["security"]["sipStatus"] == "ENABLED" else "ENABLED"
    elif what == "portal" and not any(a.get("bundleId") == "com.microsoft.CompanyPortalMac"
                                      for a in record["applications"]):
        record["applications"].append({
            "name": "Company Portal.app", "path": "/Applications/Company Portal.app", "version": "5.2411.2",
            "macAppStore": False, "sizeMegabytes": 120, "bundleId": "com.microsoft.CompanyPortalMac",
            "updateAvailable": False, "externalVersionId": "0"})
    else:
        record["hardware"]["batteryCapacityPercent"] = max(50, record["hardware"]["batteryCapacityPercent"] - 1)


SERVICE_FACTORIES.append(JamfService)
