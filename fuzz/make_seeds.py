#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/): small, valid starting points
each target's input format describes, and every frozen wire frame of
protocol/tests/fixtures/golden_frames.txt where a target reads frames. Run from anywhere; the
seeds are committed, so this only needs running again when a format changes."""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pstr(s):
    b = s.encode() if isinstance(s, str) else s
    return varint(len(b)) + b


def cobs_decode(data):
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        i += 1
        out += data[i:i + code - 1]
        i += code - 1
        if code < 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def golden():
    frames = []
    with open(os.path.join(ROOT, "protocol/tests/fixtures/golden_frames.txt")) as f:
        for line in f:
            name, hexed = line.split()
            frames.append((name, bytes.fromhex(hexed)))
    return frames


def policy(statements):
    """Compact policy: postcard sequence of (effect, principals, actions, condition None)."""
    out = varint(len(statements))
    for effect, principals, actions in statements:
        out += varint(effect) + varint(len(principals))
        for p in principals:
            out += pstr(p)
        out += varint(actions) + b"\x00"
    return out


ALL = (1 << 40) - 1
POLICIES = [
    policy([(0, ["role/admin"], ALL)]),
    policy([(0, ["role/admin"], ALL), (1, ["*"], 1 << 3)]),
    policy([(0, ["role/admin", "bob"], ALL), (0, ["alice"], 0b1100)]),
]

# token_requests: [op, arg, …] commands (see the target); raw golden request frames via op 14.
# CreateKey is [0, spec (KeySpec::ALL index), usage byte]: 0 SYMMETRIC_DEFAULT, 1 ECC_NIST_P256,
# 2 HMAC_256, 5 ECC_SECG_P256K1, 6 ECC_NIST_P384, 7 ECC_NIST_EDWARDS25519, 8 ML_DSA_44,
# 12 ML_KEM_768; usage byte 0 the spec's first allowed usage, 1 its second.
# Sign+Verify is [10, key, how (algorithm | message type << 4), length, message…, flip].
token = {
    "create_encrypt_decrypt": bytes([0, 0, 0, 1, 0]) + b"p" * 64 + bytes([2, 0, 0]),
    "create_rotate_retire": bytes([0, 0, 0, 3, 0, 3, 0, 11, 0, 2]),
    "schedule_deletion_and_time": bytes([0, 0, 0, 0, 1, 0, 4, 0, 7, 9, 200, 9, 200, 0, 2, 0]),
    "aliases_tags_policy": bytes([0, 0, 0, 5, 0, 6, 0]) + b"team=ops" + b"x" * 16
    + bytes([7, 0, len(POLICIES[0])]) + POLICIES[0],
    "sign_mac_datakey": bytes([0, 1, 0, 0, 2, 0, 10, 0, 0, 4]) + b"fuzz" + bytes([3, 10, 1, 0, 4])
    + b"fuzz" + bytes([0, 19, 0]),
    "restart_and_power_cut": bytes([0, 0, 0, 12, 0, 13, 3, 7, 0, 0, 0, 13, 0, 40, 3, 0]),
    "disable_enable": bytes([0, 0, 0, 8, 0, 1, 0]) + b"q" * 64 + bytes([8, 0x80, 1, 0]) + b"r" * 64,
    "secp256k1_p384_sign_verify": bytes([0, 5, 0, 0, 6, 0, 10, 0, 0, 2]) + b"hi" + bytes([1, 10, 1, 1, 2])
    + b"hi" + bytes([2]),
    "ed25519_sign_verify": bytes([0, 7, 0, 10, 0, 2, 5]) + b"hello" + bytes([9, 10, 0, 3, 5]) + b"hello"
    + bytes([9]),
    "ml_dsa_44_sign_external_mu": bytes([0, 8, 0, 10, 0, 4, 3]) + b"abc" + bytes([1, 10, 0, 0x24, 64])
    + b"m" * 64 + bytes([1]),
    "ecdh_p256_p384": bytes([0, 1, 1, 0, 6, 1, 15, 0, 0, 16, 0, 0, 16, 1, 0, 15, 1, 0, 16, 1, 0]),
    "ml_kem_768_round_trip": bytes([0, 12, 0, 17, 0, 0, 17, 0, 0x81, 17, 0, 0x41, 3, 0, 17, 0, 0]),
    "data_key_pairs": bytes([0, 0, 0, 18, 0, 0, 2, 0, 0, 18, 0x80, 3, 2, 0, 0]),
}
for name, data in token.items():
    write("token_requests", name, data)
for name, frame in golden():
    if name.startswith("request."):
        raw = frame
        write("token_requests", "raw_" + name.split(".")[1], bytes([14, len(raw) // 4, len(raw) % 4]) + raw)

# host_responses: [selector][rest of a response frame after its id], the selector's call
# matching the reply kind.
CALLS = {
    "Info": 0, "Random": 1, "KeyMetadata": 3, "Keys": 4, "Encrypt": 5, "Decrypt": 6, "ReEncrypt": 7,
    "DataKey": 8, "RotationStatus": 9, "Rotated": 10, "Rotations": 11, "Retired": 12, "Sign": 13,
    "PublicKey": 14, "Mac": 15, "DeletionScheduled": 16, "Aliases": 17, "Tags": 18, "Principals": 19,
    "AuditCheckpoint": 20, "AuditEntries": 21, "KeyPolicy": 22, "DeviceKey": 23,
}
for name, frame in golden():
    if not name.startswith("response."):
        continue
    payload = cobs_decode(frame[:-1])
    i = 0
    while payload[i] & 0x80:
        i += 1
    rest = payload[i + 1:]
    kind = name.split(".")[1]
    selector = CALLS.get(kind, 0)
    write("host_responses", "golden_" + kind, bytes([selector]) + rest)
    write("host_responses", "golden_garbage_first_" + kind, bytes([selector | 0x80]) + rest + b"\xfe\x01\x02\x03")

# encrypted_file: mode 1 = round trip [segment size byte][length u16][plaintext][changes].
for name, seg, text, changes in [
    ("one_segment", 4, b"hello world", b""),
    ("many_segments", 0, bytes(range(200)), b""),
    ("flipped", 2, b"a" * 100, bytes([0, 90, 1])),
    ("truncated", 1, b"b" * 70, bytes([1, 250, 0])),
    ("appended", 3, b"c" * 30, bytes([2, 7, 0])),
    ("empty", 0, b"", b""),
]:
    write("encrypted_file", name, bytes([1, seg]) + struct.pack(">H", len(text)) + text + changes)
write("encrypted_file", "raw_header", b"\x00PKMF\x01\x01\x00\x00\x00\x40" + b"\x11" * 48 + b"\x00\x20" + b"\x22" * 32
      + b"\x00\x02\x00\x00" + b"\x33" * 32)

# key_policy: [principal length][principal][admin flag][action bit][context length][context] + policy.
for i, p in enumerate(POLICIES):
    write("key_policy", f"policy_{i}", bytes([3]) + b"bob" + bytes([1, 3, 7]) + b"app=web" + p)
    write("key_policy", f"policy_{i}_user", bytes([5]) + b"alice" + bytes([0, 2, 0]) + p)

JSON_POLICIES = [
    '{"Statement":[{"Effect":"Allow","Principal":{"Pkms":["role/admin"]},"Action":"kms:*","Resource":"*"}]}',
    '{"Statement":[{"Effect":"Allow","Principal":{"Pkms":["bob","role/admin"]},"Action":["kms:Encrypt","kms:Decrypt"],'
    '"Condition":{"StringEquals":{"kms:EncryptionContext:app":"web"}}},'
    '{"Effect":"Deny","Principal":"*","Action":"kms:ScheduleKeyDeletion"}]}',
    '{"Statement":{"Effect":"Allow","Principal":{"Pkms":"alice"},"Action":["kms:CreateGrant"],'
    '"Condition":{"ForAllValues:StringEquals":{"kms:GrantOperations":["Encrypt","Decrypt"]},'
    '"pkms:EncryptionContextEquals":{"app":"x"}}}}',
]
for i, text in enumerate(JSON_POLICIES):
    write("key_policy", f"json_{i}", bytes([3]) + b"bob" + bytes([1, 3, 7]) + b"app=web" + text.encode())

# audit_verify: mode 1 = signed [first sequence u64][count][entries (3 bytes each)][changes].
for name, first, n, changes in [
    ("from_start", 1, 3, b""),
    ("after_a_checkpoint", 500, 4, b""),
    ("flipped", 1, 2, bytes([0, 100, 4])),
    ("truncated", 9, 2, bytes([1, 200, 0])),
]:
    write("audit_verify", name, bytes([1]) + struct.pack(">Q", first) + bytes([n]) + bytes(range(3 * n)) + changes)
write("audit_verify", "raw", b"\x00PKMSAUD1\x00\x00" + b"\x00" * 50)

# session_handshake: mode 1 = inner requests sealed in a real session, separated by 0xFE;
# each chunk is [counter skew][postcard RequestFrame].
def request_frame(variant, fields=b""):
    return varint(5) + b"\x00" + varint(variant) + fields

inner = [
    request_frame(1),  # GetInfo
    request_frame(5, b"\x00\x00"),  # ListKeys
    request_frame(3, varint(0) + b"\x00" + pstr("s") + varint(0) + b"\x00"),  # CreateKey
    request_frame(0, struct.pack("<H", 1)[:1]),  # Hello, protocol 1
    request_frame(53),  # CloseSession
]
write("session_handshake", "sealed_requests", bytes([1]) + b"\xfe".join(bytes([1]) + f for f in inner))
# The same with the mode byte's top bit: the host's handshake asks for the token's status.
write("session_handshake", "sealed_requests_asking_status",
      bytes([0x81]) + b"\xfe".join(bytes([1]) + f for f in inner))
# A forged message 1 whose payload is one flags byte and a tag.
write("session_handshake", "forged_open_with_flags", bytes([0]) + b"\x04" + b"\x11" * 64 + b"\xfe" + b"\x01" + b"\x22" * 16)
write("session_handshake", "forged_open", bytes([0]) + b"\x04" + b"\x11" * 64 + b"\xfe" + b"\x22" * 16
      + b"\xfe" + b"\x01\x00\x00\x00" + b"\x00" * 8 + b"\x33" * 20)
write("session_handshake", "host_finish", bytes([2]) + b"\x01\x00\x00\x00\xfe" + b"\x04" + b"\x44" * 64
      + b"\xfe" + b"\x55" * 20)
print("seeds written under", os.path.join(HERE, "corpus"))
