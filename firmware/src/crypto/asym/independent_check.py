# The independent side of crypto::asym's tests: python `cryptography` (OpenSSL) and, for
# Ed25519ph (which neither OpenSSL 3.0 nor `cryptography` offers), a direct transcription of
# RFC 8032's reference verification. Reads one request per line on stdin, writes one line per
# request on stdout; any failed check raises (non-zero exit, message on stderr).
#
#   spki SPEC DER                 the public key loads as the right type and curve
#   pkcs8 SPEC DER SPKI           the private key loads, re-encodes to the same bytes, matches SPKI
#   seedpub SPEC SEED SPKI        (ML-DSA, ML-KEM) the key from the seed has this public key
#   verify ALG KIND SPKI MSG SIG  the signature verifies (ECDSA: and is low-S)
#   reject ALG KIND SPKI MSG SIG  the signature does not verify
#   encaps SPKI                   -> "encaps CT SS": an encapsulation to the public key
#   decaps SPEC SEED CT           -> "decaps SS"
#   ecdh SPEC SPKI                -> "ecdh PEER_SPKI SS": a fresh peer key and the ECDH secret
import hashlib
import sys

import cryptography
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, utils

assert int(cryptography.__version__.split(".")[0]) >= 48, "python cryptography >= 48 is needed"

CURVES = {"ECC_NIST_P256": "secp256r1", "ECC_SECG_P256K1": "secp256k1", "ECC_NIST_P384": "secp384r1"}
EC_CURVE = {"ECC_NIST_P256": ec.SECP256R1, "ECC_SECG_P256K1": ec.SECP256K1, "ECC_NIST_P384": ec.SECP384R1}
ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp256k1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    "secp384r1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
}
PUBLIC = {
    "ECC_NIST_EDWARDS25519": ed25519.Ed25519PublicKey,
    "ML_DSA_44": mldsa.MLDSA44PublicKey,
    "ML_DSA_65": mldsa.MLDSA65PublicKey,
    "ML_DSA_87": mldsa.MLDSA87PublicKey,
    "ML_KEM_768": mlkem.MLKEM768PublicKey,
    "ML_KEM_1024": mlkem.MLKEM1024PublicKey,
}
FROM_SEED = {
    "ML_DSA_44": mldsa.MLDSA44PrivateKey,
    "ML_DSA_65": mldsa.MLDSA65PrivateKey,
    "ML_DSA_87": mldsa.MLDSA87PrivateKey,
    "ML_KEM_768": mlkem.MLKEM768PrivateKey,
    "ML_KEM_1024": mlkem.MLKEM1024PrivateKey,
}


def spki_of(key):
    return key.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)


def load_public(spec, der):
    key = ser.load_der_public_key(der)
    if spec in CURVES:
        assert isinstance(key, ec.EllipticCurvePublicKey), type(key)
        assert key.curve.name == CURVES[spec], key.curve.name
    else:
        assert isinstance(key, PUBLIC[spec]), (spec, type(key))
    assert spki_of(key) == der, "the SPKI does not re-encode to the same bytes"
    return key


# RFC 8032 section 6 (reference code), verification of Ed25519ph with an empty context.
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y, sign):
    xx = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    x = pow(xx, (P + 3) // 8, P)
    if (x * x - xx) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - xx) % P != 0:
        raise ValueError("not a point")
    if x & 1 != sign:
        x = P - x
    return x


def _decode(s):
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        raise ValueError("non-canonical")
    x = _recover_x(y, sign)
    return (x, y, 1, x * y % P)


def _add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, p):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _encode(p):
    zi = pow(p[2], P - 2, P)
    x, y = p[0] * zi % P, p[1] * zi % P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


BASE = (_recover_x(4 * pow(5, P - 2, P) % P, 0), 4 * pow(5, P - 2, P) % P, 1, 0)
BASE = (BASE[0], BASE[1], 1, BASE[0] * BASE[1] % P)


def ed25519ph_verify(public, prehash, sig):
    if len(sig) != 64:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return False
    dom = b"SigEd25519 no Ed25519 collisions" + bytes([1, 0])
    h = int.from_bytes(hashlib.sha512(dom + sig[:32] + public + prehash).digest(), "little") % L
    return _encode(_mul(s, BASE)) == _encode(_add(_decode(sig[:32]), _mul(h, _decode(public))))


def verifies(alg, kind, spki, msg, sig):
    key = ser.load_der_public_key(spki)
    try:
        if alg in ("ECDSA_SHA_256", "ECDSA_SHA_384"):
            h = hashes.SHA256() if alg == "ECDSA_SHA_256" else hashes.SHA384()
            algo = ec.ECDSA(utils.Prehashed(h)) if kind == "DIGEST" else ec.ECDSA(h)
            key.verify(sig, msg, algo)
            r, s = utils.decode_dss_signature(sig)
            assert s <= ORDERS[key.curve.name] // 2, "high-S signature"
            assert utils.encode_dss_signature(r, s) == sig, "signature is not DER"
        elif alg == "ED25519_SHA_512":
            key.verify(sig, msg)
        elif alg == "ED25519_PH_SHA_512":
            prehash = msg if kind == "DIGEST" else hashlib.sha512(msg).digest()
            return ed25519ph_verify(key.public_bytes_raw(), prehash, sig)
        elif alg == "ML_DSA_SHAKE_256":
            key.verify(sig, msg)
        else:
            raise AssertionError("unknown algorithm " + alg)
        return True
    except InvalidSignature:
        return False


def main():
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        cmd, args = parts[0], parts[1:]
        if cmd == "spki":
            load_public(args[0], bytes.fromhex(args[1]))
            print("ok")
        elif cmd == "pkcs8":
            spec, der, spki = args[0], bytes.fromhex(args[1]), bytes.fromhex(args[2])
            key = ser.load_der_private_key(der, None)
            again = key.private_bytes(ser.Encoding.DER, ser.PrivateFormat.PKCS8, ser.NoEncryption())
            assert again == der, "PKCS#8 differs from OpenSSL's encoding of the same key"
            assert spki_of(key.public_key()) == spki, "PKCS#8 key does not match the public key"
            print("ok")
        elif cmd == "seedpub":
            spec, seed, spki = args[0], bytes.fromhex(args[1]), bytes.fromhex(args[2])
            assert spki_of(FROM_SEED[spec].from_seed_bytes(seed).public_key()) == spki
            print("ok")
        elif cmd in ("verify", "reject"):
            ok = verifies(args[0], args[1], *(bytes.fromhex(a) for a in args[2:5]))
            assert ok == (cmd == "verify"), line
            print("ok")
        elif cmd == "encaps":
            shared, ct = ser.load_der_public_key(bytes.fromhex(args[0])).encapsulate()
            print("encaps", ct.hex(), shared.hex())
        elif cmd == "decaps":
            key = FROM_SEED[args[0]].from_seed_bytes(bytes.fromhex(args[1]))
            print("decaps", key.decapsulate(bytes.fromhex(args[2])).hex())
        elif cmd == "ecdh":
            spec, ours = args[0], ser.load_der_public_key(bytes.fromhex(args[1]))
            peer = ec.generate_private_key(EC_CURVE[spec]())
            print("ecdh", spki_of(peer.public_key()).hex(), peer.exchange(ec.ECDH(), ours).hex())
        else:
            raise AssertionError("unknown request " + cmd)
        sys.stdout.flush()


main()
