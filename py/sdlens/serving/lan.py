"""A classroom network: the HTTPS certificate, the addresses students can type, a QR code.

The page needs a secure context for WebGPU, Cache Storage, the service worker and threads; on a
LAN only HTTPS gives one. The certificate is self-signed, made on first use with the
`cryptography` package (pinned in the `sdlens[lan]` extra) and kept in ~/.sdlens/lan/, so the
next lesson serves the same one. The QR code is drawn by `segno` (same extra).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import sys
from pathlib import Path

CERT_DIR = Path.home() / ".sdlens" / "lan"
CERT_DAYS = 825
RENEW_BEFORE = datetime.timedelta(days=30)
CERT_WARNING = ("The browser warns once that this certificate is not trusted, because this computer "
                "made it itself: click Advanced, then Proceed; the connection is still encrypted.")


class LanError(Exception):
    pass


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other machines may reach (no loopback), best guess first."""
    found: list[str] = []

    def add(address: str):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return
        if ip.version == 4 and not ip.is_loopback and not ip.is_link_local and address not in found:
            found.append(address)

    # The address the default route leaves from (a UDP "connect" sends nothing).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            add(probe.getsockname()[0])
        except OSError:
            pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            add(info[4][0])
    except OSError:
        pass
    for address in _interface_addresses():
        add(address)
    return found


def _interface_addresses() -> list[str]:
    """Every interface's IPv4 address (Linux: SIOCGIFADDR); elsewhere nothing more."""
    try:
        import fcntl
        import struct
    except ImportError:
        return []
    addresses = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
                addresses.append(socket.inet_ntoa(packed[20:24]))
            except OSError:
                continue
    return addresses


def ensure_certificate(cert_dir: Path = CERT_DIR, addresses: list[str] = ()) -> tuple[Path, Path, bool]:
    """(certificate, key, made_now): the kept self-signed certificate, made if missing or expiring."""
    cert_path, key_path = cert_dir / "cert.pem", cert_dir / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError as err:
        raise LanError("--lan needs the `cryptography` package to make its certificate: "
                       "pip install 'sdlens[lan]' (or scripts/install)") from err
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert_path.is_file() and key_path.is_file():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if cert.not_valid_after_utc - now > RENEW_BEFORE:
                return cert_path, key_path, False
        except ValueError:
            pass  # unreadable: make a new one

    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname()
    names = [x509.DNSName("localhost"), x509.DNSName(host), x509.DNSName(f"{host}.local"),
             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sdlens on {host}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_dir.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the key stays private
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path, True


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context


def print_qr(url: str, out=sys.stdout) -> bool:
    """The URL as a QR code in the terminal; False when segno is not installed."""
    try:
        import segno
    except ImportError:
        return False
    segno.make(url, error="m").terminal(out=out, compact=True, border=2)
    return True


def fingerprint(cert_path: Path) -> str:
    """SHA-256 of the certificate, as browsers show it (for the careful to compare)."""
    der = ssl.PEM_cert_to_DER_cert(cert_path.read_text())
    import hashlib
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
