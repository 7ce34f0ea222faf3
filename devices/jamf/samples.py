"""Realistic Jamf Pro computers-inventory records, for the demo, the simulator, tests and benchmarks.

``make_record(n, tenant_key)`` is deterministic: the same arguments give the same Mac, so the demo
can be re-seeded and the Jamf simulator can serve the very Macs the demo imported.
"""

import datetime
import random
import uuid

MODELS = [
    # (model, identifier, architecture, processor type, speed MHz, cores, ram MB, intel)
    ("MacBook Air (M1, 2020)", "MacBookAir10,1", "arm64", "Apple M1", 3200, 8, 8192, False),
    ("MacBook Air (13-inch, M2, 2022)", "Mac14,2", "arm64", "Apple M2", 3490, 8, 16384, False),
    ("MacBook Pro (14-inch, 2021)", "MacBookPro18,3", "arm64", "Apple M1 Pro", 3220, 10, 16384, False),
    ("MacBook Pro (14-inch, M3, Nov 2023)", "Mac15,3", "arm64", "Apple M3", 4050, 8, 16384, False),
    ("Mac mini (M2, 2023)", "Mac14,3", "arm64", "Apple M2", 3490, 8, 8192, False),
    ("iMac (24-inch, M3, 2023)", "Mac15,4", "arm64", "Apple M3", 4050, 8, 8192, False),
    ("MacBook Pro (16-inch, 2019)", "MacBookPro16,1", "x86_64", "6-Core Intel Core i7", 2600, 6, 16384, True),
    ("MacBook Pro (13-inch, 2020, Four Thunderbolt 3 ports)", "MacBookPro16,2", "x86_64", "Quad-Core Intel Core i5",
     2000, 4, 16384, True),
    ("MacBook Air (Retina, 13-inch, 2020)", "MacBookAir9,1", "x86_64", "Dual-Core Intel Core i3", 1100, 2, 8192, True),
    ("iMac (Retina 5K, 27-inch, 2020)", "iMac20,1", "x86_64", "8-Core Intel Core i7", 3800, 8, 32768, True),
]
OS_VERSIONS = [
    ("12.7.6", "21H1320"), ("13.6.9", "22G830"), ("13.7.1", "22H221"), ("14.6.1", "23G93"), ("14.7.1", "23H222"),
    ("15.0.1", "24A348"), ("15.1", "24B83"), ("15.1.1", "24B91"),
]
FIRST_NAMES = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Tim", "Hedy",
               "Edsger", "Radia", "Guido", "Katherine", "John", "Anita", "Donald", "Sophie", "Bjarne"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen",
              "Berners-Lee", "Lamarr", "Dijkstra", "Perlman", "van Rossum", "Johnson", "Backus", "Borg", "Knuth",
              "Wilson", "Stroustrup"]


def _guid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _mac(rng):
    return ":".join("%02X" % rng.randrange(256) for _ in range(6))


def _iso(dt):
    return dt.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_record(n, tenant_key="demo", domain="example.com", now=None, users=None, api_version="v3", profile=None):
    """One Jamf Pro computers-inventory record (all sections) for Mac number ``n`` of a tenant.

    ``profile`` forces a variety: "healthy", "unencrypted", "sip_off", "stale", "no_portal",
    "portal_unregistered"; by default it is drawn from ``n`` so a fleet has a realistic mix.
    ``users`` forces the number of local user accounts (default 1 to 3).
    """
    rng = random.Random("%s:%d" % (tenant_key, n))
    now = now or datetime.datetime.now(datetime.UTC)
    if profile is None:
        roll = rng.random()
        profile = (
            "unencrypted" if roll < 0.08 else "sip_off" if roll < 0.12 else "stale" if roll < 0.20
            else "no_portal" if roll < 0.30 else "portal_unregistered" if roll < 0.40 else "healthy"
        )
    model, model_id, arch, cpu, speed, cores, ram, intel = rng.choice(MODELS)
    os_version, os_build = rng.choice(OS_VERSIONS[:3] if intel else OS_VERSIONS)
    serial = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(10))
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    username = (first[0] + last.replace(" ", "").replace("-", "")).lower()
    email = "%s@%s" % (username, domain)
    if profile == "stale":
        last_contact = now - datetime.timedelta(days=rng.randint(2, 40), minutes=rng.randint(0, 600))
    else:
        last_contact = now - datetime.timedelta(minutes=rng.randint(1, 14 * 60))
    report_date = last_contact - datetime.timedelta(hours=rng.randint(0, 20))
    enrolled = report_date - datetime.timedelta(days=rng.randint(30, 900))
    has_portal = profile not in ("no_portal",)
    registered = has_portal and profile != "portal_unregistered"
    device_aad = _guid(rng) if registered else ""
    count = users if users is not None else rng.choice([1, 1, 1, 2, 3])

    accounts = []
    for i in range(count):
        name = username if i == 0 else ("admin" if i == 1 else "%s%d" % (username, i))
        accounts.append({
            "uid": str(501 + i),
            "userGuid": _guid(rng),
            "username": name,
            "fullName": "%s %s" % (first, last) if i == 0 else name.title(),
            "admin": i == 1,
            "homeDirectory": "/Users/%s" % name,
            "homeDirectorySizeMb": rng.randint(1000, 200000),
            "fileVault2Enabled": profile != "unencrypted",
            "userAccountType": "LOCAL" if i else rng.choice(["LOCAL", "MOBILE"]),
            "passwordMinLength": rng.choice([None, 8, 10, 12]),
            "passwordMaxAge": rng.choice([None, 90, 365]),
            "passwordMinComplexCharacters": rng.choice([None, 1, 2]),
            "passwordHistoryDepth": rng.choice([None, 5, 10]),
            "passwordRequireAlphanumeric": rng.choice([None, True, False]),
            "computerAzureActiveDirectoryId": device_aad if (registered and i == 0) else "",
            "userAzureActiveDirectoryId": _guid(rng) if (registered and i == 0) else "",
            "azureActiveDirectoryId": (
                ("UNRESPONSIVE" if profile == "stale" else "ACTIVATED") if (registered and i == 0) else "UNKNOWN"
            ),
        })

    apps = [
        {"name": "Safari.app", "path": "/Applications/Safari.app", "version": "18.1", "macAppStore": False,
         "sizeMegabytes": 13, "bundleId": "com.apple.Safari", "updateAvailable": False, "externalVersionId": "0"},
        {"name": "Microsoft Outlook.app", "path": "/Applications/Microsoft Outlook.app", "version": "16.90",
         "macAppStore": False, "sizeMegabytes": 2100, "bundleId": "com.microsoft.Outlook", "updateAvailable": False,
         "externalVersionId": "0"},
    ]
    if has_portal:
        apps.append({"name": "Company Portal.app", "path": "/Applications/Company Portal.app",
                     "version": rng.choice(["5.2409.1", "5.2410.0", "5.2411.2"]), "macAppStore": False,
                     "sizeMegabytes": 120, "bundleId": "com.microsoft.CompanyPortalMac", "updateAvailable": False,
                     "externalVersionId": "0"})

    general = {
        "name": "%s's %s" % (first, model.split(" (")[0]),
        "lastIpAddress": "10.%d.%d.%d" % (rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)),
        "platform": "Mac",
        "reportDate": _iso(report_date),
        "lastEnrolledDate": _iso(enrolled),
        "initialEntryDate": enrolled.date().isoformat(),
        "remoteManagement": {"managed": True, "managementUsername": "jamfadmin"},
        "supervised": True,
        "mdmCapable": {"capable": True, "capableUsers": [username]},
        "enrollmentMethod": None,
        "site": {"id": "-1", "name": "None"},
        "managementId": _guid(rng),
        "extensionAttributes": [],
    }
    general["lastContact" if api_version == "v4" else "lastContactTime"] = _iso(last_contact)
    filevault_state = "UNENCRYPTED" if profile == "unencrypted" else "ENCRYPTED"
    return {
        "id": str(n),
        "udid": str(uuid.UUID(int=rng.getrandbits(128))).upper(),
        "general": general,
        "hardware": {
            "make": "Apple", "model": model, "modelIdentifier": model_id, "serialNumber": serial,
            "processorSpeedMhz": speed, "processorCount": 1, "coreCount": cores, "processorType": cpu,
            "processorArchitecture": arch, "busSpeedMhz": 100 if intel else 0,
            "cacheSizeKilobytes": 8192 if intel else 0, "networkAdapterType": "Ethernet", "macAddress": _mac(rng),
            "altNetworkAdapterType": "IEEE80211", "altMacAddress": _mac(rng), "totalRamMegabytes": ram,
            "openRamSlots": 0, "batteryCapacityPercent": rng.randint(70, 100),
            "smcVersion": "2.37f21" if intel else "",
            "nicSpeed": "n/a", "bootRom": "1037.120.87.0.0" if intel else "10151.121.1", "bleCapable": True,
            "extensionAttributes": [],
        },
        "operatingSystem": {
            "name": "macOS", "version": os_version, "build": os_build, "supplementalBuildVersion": os_build,
            "rapidSecurityResponse": "",
            "activeDirectoryStatus": rng.choice(["Not Bound"] * 9 + ["ad.%s" % domain]),
            "fileVault2Status": "NOT_ENCRYPTED" if profile == "unencrypted" else "BOOT_ENCRYPTED",
            "softwareUpdateDeviceId": model_id, "extensionAttributes": [],
        },
        "security": {
            "sipStatus": "DISABLED" if profile == "sip_off" else "ENABLED",
            "gatekeeperStatus": rng.choice(["APP_STORE_AND_IDENTIFIED_DEVELOPERS"] * 6 + ["APP_STORE", "DISABLED"]),
            "xprotectVersion": "5272",
            "autoLoginDisabled": rng.random() > 0.05,
            "remoteDesktopEnabled": False, "activationLockEnabled": False, "recoveryLockEnabled": False,
            "firewallEnabled": True, "secureBootLevel": "FULL_SECURITY", "externalBootLevel": "NOT_SUPPORTED",
            "bootstrapTokenAllowed": True,
        },
        "diskEncryption": {
            "bootPartitionEncryptionDetails": {
                "partitionName": "Macintosh HD (Boot Partition)",
                "partitionFileVault2State": filevault_state,
                "partitionFileVault2Percent": 0 if profile == "unencrypted" else 100,
            },
            "individualRecoveryKeyValidityStatus": "VALID",
            "institutionalRecoveryKeyPresent": False,
            "diskEncryptionConfigurationName": "FileVault",
            "fileVault2EnabledUserNames": [] if profile == "unencrypted" else [username],
            "fileVault2EligibilityMessage": "Eligible",
        },
        "localUserAccounts": accounts,
        "userAndLocation": {
            "username": username, "realname": "%s %s" % (first, last), "email": email, "position": "",
            "phone": "", "departmentId": None, "buildingId": None, "room": "", "extensionAttributes": [],
        },
        "applications": apps,
    }
