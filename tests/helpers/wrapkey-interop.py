#!/usr/bin/env python3
"""wrapkey-interop.py - the wrapping-key blob of docs/extensions.md
("Wrapping keys"), written from the documentation alone with the
`cryptography` package, to check attestd's format against it
(t0047-pulumi-hsm.sh).

  wrapkey-interop.py wrap PUBLIC.pem LABEL HEX     -> blob as hex
  wrapkey-interop.py unwrap PRIVATE.pem LABEL HEX  -> plaintext as hex (exit 1 if refused)

LABEL is what the host binds: "ext/<extension name>/<context>".
"""
import hashlib
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CURVES = {1: (ec.SECP256R1, 65), 2: (ec.SECP384R1, 97), 3: (ec.SECP521R1, 133)}
POINT = serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint


def code_of(key):
    return next(c for c, (cls, _) in CURVES.items() if isinstance(key.curve, cls))


def aes_key(z, eph_point, key_point, label):
    return HKDF(algorithm=hashes.SHA384(), length=32, salt=eph_point + key_point,
                info=b'attestation-wrapkey-v1\0' + label.encode()).derive(z)


def wrap(pub, label, pt):
    code = code_of(pub)
    point = pub.public_bytes(*POINT)
    eph = ec.generate_private_key(CURVES[code][0]())
    eph_point = eph.public_key().public_bytes(*POINT)
    header = bytes([1, code]) + hashlib.sha256(point).digest()[:8] + eph_point
    nonce = os.urandom(12)
    key = aes_key(eph.exchange(ec.ECDH(), pub), eph_point, point, label)
    return header + nonce + AESGCM(key).encrypt(nonce, pt, header)


def unwrap(priv, label, blob):
    code = code_of(priv)
    plen = CURVES[code][1]
    point = priv.public_key().public_bytes(*POINT)
    if blob[0] != 1 or blob[1] != code or blob[2:10] != hashlib.sha256(point).digest()[:8]:
        raise ValueError('not a blob of this key')
    eph_point = blob[10:10 + plen]
    header, nonce, body = blob[:10 + plen], blob[10 + plen:22 + plen], blob[22 + plen:]
    eph = ec.EllipticCurvePublicKey.from_encoded_point(CURVES[code][0](), eph_point)
    key = aes_key(priv.exchange(ec.ECDH(), eph), eph_point, point, label)
    return AESGCM(key).decrypt(nonce, body, header)


def main():
    op, pem, label, data = sys.argv[1], open(sys.argv[2], 'rb').read(), sys.argv[3], bytes.fromhex(sys.argv[4])
    try:
        if op == 'wrap':
            out = wrap(serialization.load_pem_public_key(pem), label, data)
        else:
            out = unwrap(serialization.load_pem_private_key(pem, None), label, data)
    except Exception as e:  # refused: the caller checks the exit status
        print('refused: %s' % type(e).__name__, file=sys.stderr)
        return 1
    print(out.hex())
    return 0


if __name__ == '__main__':
    sys.exit(main())
