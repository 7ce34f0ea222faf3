"""The MSP's partner application as the rest of the portal sees it: client ID, display name, credentials.

One partner application per installation (design §6a). It comes from the environment when
``PORTAL_PARTNER_CLIENT_ID`` is set (an operator who keeps credentials outside the database; the admin
then shows it read-only), else from the ``PartnerApplication`` row. ``partner_application()`` returns a
plain :class:`PartnerApp` with its credentials, newest unexpired first, or None.

Certificates are made here (``generate_certificate``): an RSA key pair and a self-signed X.509
certificate; the private key is kept encrypted (``PartnerCredential.private_key``), the certificate is
offered for download (.cer = DER, .pem) to upload to the app registration in Entra ID. msal signs the
client assertion with the key (Microsoft identity platform "certificate credentials": a JWT whose header
carries the certificate's thumbprint, ``aud`` the token endpoint, ``iss`` = ``sub`` = the client ID).
"""

import datetime
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.utils import timezone

KEY_SIZE = 2048
ENVIRONMENT = "environment"
DATABASE = "database"


@dataclass(frozen=True)
class Credential:
    """One credential of an application: a client secret, or a certificate with its private key."""

    kind: str  # "secret" or "certificate"
    expires_at: datetime.datetime | None
    secret: str = field(default="", repr=False)
    private_key: str = field(default="", repr=False)
    certificate: str = ""
    thumbprint: str = ""  # SHA-1 of the DER certificate, upper-case hex (what Entra ID shows)
    label: str = ""

    def msal_credential(self):
        """What msal's ConfidentialClientApplication takes as ``client_credential``.

        For a certificate: the PEM key and the PEM certificate; msal (1.35 and later) then signs with PS256
        and puts the certificate's SHA-256 thumbprint in the ``x5t#S256`` header, as Microsoft's
        "certificate credentials" page now describes.
        """
        if self.kind == "certificate":
            return {"private_key": self.private_key, "public_certificate": self.certificate}
        return self.secret

    @property
    def key(self):
        """A digest naming this credential in caches, never the material itself."""
        material = self.secret if self.kind == "secret" else self.thumbprint + self.private_key
        return hashlib.sha256(("%s:%s" % (self.kind, material)).encode()).hexdigest()

    @property
    def sensitive(self):
        """The strings that must never appear in a message or a log."""
        return tuple(s for s in (self.secret, self.private_key) if s)

    def is_valid(self, now=None):
        return self.expires_at is None or self.expires_at > (now or timezone.now())


@dataclass(frozen=True)
class PartnerApp:
    client_id: str
    display_name: str
    credentials: tuple  # every credential, newest expiry first
    source: str  # ENVIRONMENT or DATABASE

    def valid_credentials(self, now=None):
        return [c for c in self.credentials if c.is_valid(now)]

    def last_expiry(self, now=None):
        """When the last valid credential expires (None: none valid, or one that never expires)."""
        valid = self.valid_credentials(now)
        if not valid or any(c.expires_at is None for c in valid):
            return None
        return max(c.expires_at for c in valid)


def _sorted(credentials):
    far = datetime.datetime.max.replace(tzinfo=datetime.UTC)
    return tuple(sorted(credentials, key=lambda c: c.expires_at or far, reverse=True))


def from_environment(config=None):
    """The partner application from ``settings.PORTAL_PARTNER_APP`` (filled from PORTAL_PARTNER_* variables)."""
    config = config if config is not None else getattr(settings, "PORTAL_PARTNER_APP", None) or {}
    client_id = (config.get("client_id") or "").strip()
    if not client_id:
        return None
    credentials = []
    pem = config.get("certificate_pem") or ""
    if pem:
        key_pem, cert_pem = split_pem(pem)
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        credentials.append(Credential(
            "certificate", cert.not_valid_after_utc, private_key=key_pem, certificate=cert_pem,
            thumbprint=sha1_thumbprint(cert), label="PORTAL_PARTNER_CERTIFICATE_FILE",
        ))
    if config.get("client_secret"):
        credentials.append(Credential(
            "secret", config.get("client_secret_expires"), secret=config["client_secret"],
            label="PORTAL_PARTNER_CLIENT_SECRET",
        ))
    return PartnerApp(client_id, config.get("display_name") or "", _sorted(credentials), ENVIRONMENT)


def from_database():
    from portal.models import PartnerApplication

    row = PartnerApplication.objects.prefetch_related("credentials").order_by("pk").first()
    if row is None:
        return None
    credentials = [
        Credential(
            c.kind, c.expires_at, secret=c.secret_value, private_key=c.private_key, certificate=c.certificate,
            thumbprint=c.thumbprint, label=str(c),
        )
        for c in row.credentials.all()
    ]
    return PartnerApp(row.client_id, row.display_name, _sorted(credentials), DATABASE)


def partner_application():
    """The partner application in use: the environment's when set, else the database's, else None."""
    return from_environment() or from_database()


def environment_configured():
    return from_environment() is not None


# -- certificates -------------------------------------------------------------------------------------


def sha1_thumbprint(cert):
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra ID names certificates by it


def split_pem(pem):
    """(private key PEM, certificate PEM) out of one PEM text holding both."""
    text = pem.decode() if isinstance(pem, bytes) else pem
    key_start = text.find("-----BEGIN")
    blocks, rest = [], text[key_start:] if key_start >= 0 else ""
    while "-----BEGIN" in rest:
        start = rest.find("-----BEGIN")
        end_marker = rest.find("-----END", start)
        end = rest.find("-----", end_marker + 8) + 5
        blocks.append(rest[start:end].strip() + "\n")
        rest = rest[end:]
    keys = [b for b in blocks if "PRIVATE KEY" in b.split("\n", 1)[0]]
    certs = [b for b in blocks if "CERTIFICATE" in b.split("\n", 1)[0]]
    if not keys or not certs:
        raise ValueError("The PEM file must hold the private key and the certificate.")
    return keys[0], certs[0]


@dataclass(frozen=True)
class GeneratedCertificate:
    private_key_pem: str
    certificate_pem: str
    thumbprint: str
    not_before: datetime.datetime
    not_after: datetime.datetime


def generate_certificate(common_name, days, now=None):
    """A new RSA key pair and a self-signed certificate valid for ``days`` days (Entra ID accepts these)."""
    if not 1 <= int(days) <= 3 * 365:
        raise ValueError("days must be between 1 and 1095")
    now = (now or timezone.now()).replace(microsecond=0)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "Mac compliance portal")])
    not_before = now - datetime.timedelta(minutes=5)
    not_after = now + datetime.timedelta(days=int(days))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return GeneratedCertificate(key_pem, cert_pem, sha1_thumbprint(cert), not_before, not_after)


def certificate_der(cert_pem):
    """The certificate in DER, for the .cer download."""
    return x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(serialization.Encoding.DER)
