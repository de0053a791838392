"""HTTPS for the console on any address but loopback: the bank's own certificate (settings
`console.tls_certificate` and `console.tls_key`), or one made for this box at init with `cryptography`
(ECDSA P-256, self-signed, for the box's host name, localhost and loopback), which staff's browsers are told
to trust once (docs/security.md)."""

import datetime
import ipaddress
import os
import socket
from pathlib import Path

from appliance.errors import ConfigError

FOLDER = "tls"
CERTIFICATE, KEY = "console-cert.pem", "console-key.pem"
DAYS = 825  # the longest life browsers accept for a certificate


def make_self_signed(home_path: Path) -> tuple[Path, Path]:
    """A certificate and key for this box in <home>/tls (key 0600), unless they exist."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = Path(home_path) / FOLDER
    certificate, key_path = folder / CERTIFICATE, folder / KEY
    if certificate.exists() and key_path.exists():
        return certificate, key_path
    folder.mkdir(mode=0o700, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname()
    names = [x509.DNSName(host), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
             x509.IPAddress(ipaddress.ip_address("::1"))]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Insight Appliance")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return certificate, key_path


def certificate_for(home) -> tuple[Path, Path]:
    """The bank's certificate and key when the settings name them (checked to belong together), else the
    box's own."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    named = home.settings["console.tls_certificate"], home.settings["console.tls_key"]
    if not any(named):
        return make_self_signed(home.path)
    if not all(named):
        raise ConfigError("settings console.tls_certificate and console.tls_key go together")
    certificate, key_path = (home.path / p if not Path(p).is_absolute() else Path(p) for p in named)
    try:
        cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    except (OSError, ValueError):
        raise ConfigError(f"setting console.tls_certificate: {certificate.name} is not a readable PEM "
                          "certificate") from None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise ConfigError(f"setting console.tls_key: {key_path.name} is not a readable, unencrypted PEM "
                          "private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if (cert.public_key().public_bytes(serialization.Encoding.PEM, public)
            != key.public_key().public_bytes(serialization.Encoding.PEM, public)):
        raise ConfigError(f"setting console.tls_key: {key_path.name} is not the key of {certificate.name}")
    return certificate, key_path


def serve_https(app, host: str, port: int, certificate: Path, key: Path, threads: int = 4) -> None:
    """Gunicorn, one worker process (the app holds the open home) with threads, TLS 1.2 or newer only."""
    import ssl

    from gunicorn.app.base import BaseApplication

    def tls_context(_config, default_context):
        context = default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    class Console(BaseApplication):
        def load_config(self):
            for name, value in {"bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}", "workers": 1,
                                "worker_class": "gthread", "threads": threads, "certfile": str(certificate),
                                "keyfile": str(key), "ssl_context": tls_context, "accesslog": None,
                                "proc_name": "insight-appliance-console"}.items():
                self.cfg.set(name, value)

        def load(self):
            return app

    Console().run()
