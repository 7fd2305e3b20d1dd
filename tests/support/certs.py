"""Throwaway X.509 certificates for TLS tests, made with the openssl command line.

The openssl CLI rather than a Python library because it is on every Debian machine that
has Prosody or an IRC server installed, and the project does not depend on ``cryptography``.
Keys are elliptic-curve (fast to make) and short-lived: they exist for one test run, in
its temporary directory.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = "openssl"
DAYS = "2"


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Certificates:
    """A private CA, a server certificate it signed, and a self-signed one it did not."""

    #: the CA certificate: trust it (e.g. SSL_CERT_FILE) and ``signed`` verifies
    ca: Path
    #: for 127.0.0.1 and localhost, signed by ``ca``
    signed: KeyPair
    #: for 127.0.0.1 and localhost too, but self-signed: no trust store vouches for it
    self_signed: KeyPair


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(
        [OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{done.stderr}")


def make_certificates(directory: Path) -> Certificates:
    """Write a CA and two server certificates (for 127.0.0.1) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    server_ext = directory / "server.ext"
    server_ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    key_args = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *key_args, "-keyout", "ca.key", "-out", "ca.pem", "-days", DAYS,
        "-subj", "/CN=Portway test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", *key_args, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", DAYS, "-extfile", "server.ext",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-x509", *key_args, "-keyout", "stranger.key", "-out", "stranger.pem",
        "-days", DAYS, "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        cwd=directory,
    )  # fmt: skip
    return Certificates(
        ca=directory / "ca.pem",
        signed=KeyPair(directory / "server.pem", directory / "server.key"),
        self_signed=KeyPair(directory / "stranger.pem", directory / "stranger.key"),
    )
