"""The App Store sandbox's signing chain (a root, an intermediate and a leaf shaped like Apple's) and its
ES256 JWS signer.

What it signs verifies with Apple's `SignedDataVerifier` given this chain's root, and with no other root
(docs/tools.md).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Apple's marker extensions, as the library looks them up (`_ChainVerifier.check_oid` calls).
LEAF_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.11.1")
INTERMEDIATE_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.2.1")
# Apple's certificates carry ASN.1 NULL as these extensions' value; the library checks presence only.
_ASN1_NULL = b"\x05\x00"
ORGANIZATION = "Launch Ready provider sandbox (not Apple)"
VALIDITY = timedelta(days=3650)
_FILES = ("root.pem", "intermediate.pem", "leaf.pem", "leaf-key.pem")


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
    ])


def _certificate(
    subject: str,
    public_key: ec.EllipticCurvePublicKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    path_length: int | None,
    marker: x509.ObjectIdentifier | None,
    not_before: datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    if marker is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(marker, _ASN1_NULL), critical=False)
    # Apple's root and intermediate are P-384 keys signing with SHA-384; the leaf is P-256 (ES256).
    return builder.sign(issuer_key, hashes.SHA384())


@dataclass(frozen=True)
class SigningChain:
    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, now: datetime | None = None) -> SigningChain:
        """A new chain valid from a day before `now` for ten years."""
        not_before = (now or datetime.now(UTC)) - timedelta(days=1)
        root_key = ec.generate_private_key(ec.SECP384R1())
        intermediate_key = ec.generate_private_key(ec.SECP384R1())
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        root_cn, intermediate_cn = "Sandbox Root CA - G3", "Sandbox Worldwide Developer Relations CA"
        root = _certificate(root_cn, root_key.public_key(), root_cn, root_key, ca=True, path_length=None,
                            marker=None, not_before=not_before)
        intermediate = _certificate(intermediate_cn, intermediate_key.public_key(), root_cn, root_key,
                                    ca=True, path_length=0, marker=INTERMEDIATE_OID, not_before=not_before)
        leaf = _certificate("Sandbox StoreKit Signing", leaf_key.public_key(), intermediate_cn,
                            intermediate_key, ca=False, path_length=None, marker=LEAF_OID,
                            not_before=not_before)
        return cls(root, intermediate, leaf, leaf_key)

    @classmethod
    def load_or_generate(cls, directory: Path) -> SigningChain:
        """The chain kept in `directory` (so notifications signed before a restart still verify), or a new
        one written there (private key file mode 0600)."""
        paths = [directory / name for name in _FILES]
        if all(path.is_file() for path in paths):
            root, intermediate, leaf = (x509.load_pem_x509_certificate(p.read_bytes()) for p in paths[:3])
            key = serialization.load_pem_private_key(paths[3].read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{paths[3]} is not an EC private key")
            return cls(root, intermediate, leaf, key)
        chain = cls.generate()
        directory.mkdir(parents=True, exist_ok=True)
        for path, certificate in zip(paths[:3], (chain.root, chain.intermediate, chain.leaf), strict=True):
            path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        descriptor = os.open(paths[3], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as key_file:
            key_file.write(chain.leaf_key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
        (directory / "root.der").write_bytes(chain.root_der)
        return chain

    @property
    def root_der(self) -> bytes:
        """The trusted root as `SignedDataVerifier(root_certificates=[...])` takes it: DER bytes."""
        return self.root.public_bytes(serialization.Encoding.DER)

    @property
    def root_pem(self) -> str:
        return self.root.public_bytes(serialization.Encoding.PEM).decode()

    def x5c(self) -> list[str]:
        return [base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
                for certificate in (self.leaf, self.intermediate, self.root)]

    def sign(self, payload: dict[str, Any]) -> str:
        """`payload` as a compact JWS with Apple's header: `alg` ES256 and `x5c`, no `typ`."""
        return jwt.encode(payload, self.leaf_key, algorithm="ES256", headers={"x5c": self.x5c(), "typ": None})
