"""`pkms serve` against the Python KMS clients: boto3 for every served operation, the aws cli,
the AWS Encryption SDK, and raw HTTP for the protocol's own errors (malformed JSON, wrong types,
missing fields, unknown targets, an oversized body, unsigned and wrongly signed requests).

Run by scripts/test-kms-clients.sh with AWS_ENDPOINT_URL_KMS set and the pinned virtual
environment of scripts/setup.sh. Prints a line per failed check and "N/M checks pass"; exits 0
only when all pass.
"""
import base64, datetime, hashlib, json, os, subprocess, sys, tempfile, urllib.error, urllib.request

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization

ENDPOINT = os.environ["AWS_ENDPOINT_URL_KMS"]
AWS = os.path.join(os.path.dirname(sys.executable), "aws")
passed = total = 0


def check(name, cond, detail=""):
    global passed, total
    total += 1
    if cond:
        passed += 1
    else:
        print(f"FAIL: {name} {detail}".rstrip(), flush=True)


def code(fn, **kw):
    try:
        fn(**kw)
        return None
    except ClientError as e:
        return e.response["Error"]["Code"]


kms = boto3.client("kms", endpoint_url=ENDPOINT)
ACCOUNT_PREFIX = "arn:aws:kms:us-east-1:111122223333:"

# Every served operation.
meta = kms.create_key(Description="py", Tags=[{"TagKey": "team", "TagValue": "a"}])["KeyMetadata"]
kid, arn = meta["KeyId"], meta["Arn"]
check("CreateKey: Arn", arn == ACCOUNT_PREFIX + "key/" + kid, arn)
check("CreateKey: CreationDate is a datetime", isinstance(meta["CreationDate"], datetime.datetime))
check("DescribeKey by ARN", kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyId"] == kid)
kms.update_key_description(KeyId=kid, Description="renamed")
check("UpdateKeyDescription", kms.describe_key(KeyId=kid)["KeyMetadata"]["Description"] == "renamed")
check("ListKeys has KeyArn", any(k["KeyArn"] == arn for k in kms.list_keys()["Keys"]))
alias = "alias/py-" + kid[:8]
kms.create_alias(AliasName=alias, TargetKeyId=kid)
entry = kms.list_aliases(KeyId=kid)["Aliases"][0]
check("ListAliases AliasArn", entry["AliasArn"] == ACCOUNT_PREFIX + alias and entry["TargetKeyId"] == kid)
kid2 = kms.create_key()["KeyMetadata"]["KeyId"]
kms.update_alias(AliasName=alias, TargetKeyId=kid2)
check("UpdateAlias retargets", kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == kid2)
kms.update_alias(AliasName=alias, TargetKeyId=kid)
ctx = {"app": "py"}
enc = kms.encrypt(KeyId=ACCOUNT_PREFIX + alias, Plaintext=b"hello", EncryptionContext=ctx)
check("Encrypt by alias ARN answers the key ARN", enc["KeyId"] == arn)
dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)
check("Decrypt", dec["Plaintext"] == b"hello" and dec["KeyId"] == arn and dec["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT")
check("Decrypt naming another key -> IncorrectKeyException",
      code(kms.decrypt, CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx, KeyId=kid2) == "IncorrectKeyException")
re = kms.re_encrypt(CiphertextBlob=enc["CiphertextBlob"], SourceEncryptionContext=ctx, DestinationKeyId=kid2)
check("ReEncrypt", re["SourceKeyId"] == arn and kms.decrypt(CiphertextBlob=re["CiphertextBlob"])["Plaintext"] == b"hello")
dk = kms.generate_data_key(KeyId=kid, NumberOfBytes=24)
check("GenerateDataKey NumberOfBytes", len(dk["Plaintext"]) == 24)
check("GenerateDataKey both KeySpec and NumberOfBytes -> ValidationException",
      code(kms.generate_data_key, KeyId=kid, KeySpec="AES_128", NumberOfBytes=16) == "ValidationException")
check("GenerateDataKeyWithoutPlaintext", "Plaintext" not in kms.generate_data_key_without_plaintext(KeyId=kid, KeySpec="AES_128"))
check("GenerateRandom", len(kms.generate_random(NumberOfBytes=1)["Plaintext"]) == 1)
kms.enable_key_rotation(KeyId=kid, RotationPeriodInDays=180)
st = kms.get_key_rotation_status(KeyId=kid)
check("Enable/GetKeyRotationStatus", st["KeyRotationEnabled"] and st["RotationPeriodInDays"] == 180
      and isinstance(st["NextRotationDate"], datetime.datetime))
kms.disable_key_rotation(KeyId=kid)
check("DisableKeyRotation", not kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"])
kms.rotate_key_on_demand(KeyId=kid)
check("ListKeyRotations ROTATIONS_ONLY", len(kms.list_key_rotations(KeyId=kid)["Rotations"]) == 1)
check("ListKeyRotations ALL_KEY_MATERIAL", len(kms.list_key_rotations(KeyId=kid, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]) == 2)
kms.disable_key(KeyId=kid)
check("DisableKey -> DisabledException", code(kms.encrypt, KeyId=kid, Plaintext=b"x") == "DisabledException")
kms.enable_key(KeyId=arn)
check("EnableKey takes an alias? no", code(kms.enable_key, KeyId=alias) == "NotFoundException")
kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "env", "TagValue": "ci"}])
kms.untag_resource(KeyId=kid, TagKeys=["team"])
check("Tag/Untag/ListResourceTags", kms.list_resource_tags(KeyId=kid)["Tags"] == [{"TagKey": "env", "TagValue": "ci"}])
s = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
pk = kms.get_public_key(KeyId=s)
check("GetPublicKey", pk["KeySpec"] == "ECC_NIST_P256" and pk["SigningAlgorithms"] == ["ECDSA_SHA_256"])
sig = kms.sign(KeyId=s, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
check("Sign/Verify", kms.verify(KeyId=s, Message=b"m", Signature=sig, SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"])
check("Sign with an RSA algorithm -> ValidationException",
      code(kms.sign, KeyId=s, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256") == "ValidationException")
m = kms.create_key(KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
mac = kms.generate_mac(KeyId=m, Message=b"m", MacAlgorithm="HMAC_SHA_384")["Mac"]
check("GenerateMac/VerifyMac", kms.verify_mac(KeyId=m, Message=b"m", Mac=mac, MacAlgorithm="HMAC_SHA_384")["MacValid"])
pol = kms.get_key_policy(KeyId=kid, PolicyName="default")
check("GetKeyPolicy", pol["PolicyName"] == "default" and "Statement" in json.loads(pol["Policy"]))
kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=pol["Policy"])
check("PutKeyPolicy malformed -> MalformedPolicyDocumentException",
      code(kms.put_key_policy, KeyId=kid, PolicyName="default", Policy="[]") == "MalformedPolicyDocumentException")
check("ListKeyPolicies", kms.list_key_policies(KeyId=kid)["PolicyNames"] == ["default"])
g = kms.create_grant(KeyId=kid, GranteePrincipal="carol", Operations=["Decrypt"],
                     Constraints={"EncryptionContextSubset": {"app": "py"}})
lg = kms.list_grants(KeyId=kid)["Grants"]
check("CreateGrant/ListGrants", any(x["GrantId"] == g["GrantId"] and x["KeyId"] == arn
                                     and x["Constraints"] == {"EncryptionContextSubset": {"app": "py"}} for x in lg))
check("ListRetirableGrants", any(x["GrantId"] == g["GrantId"] for x in kms.list_retirable_grants(RetiringPrincipal="carol")["Grants"]))
kms.revoke_grant(KeyId=kid, GrantId=g["GrantId"])
g2 = kms.create_grant(KeyId=kid, GranteePrincipal="carol", Operations=["Encrypt"])
kms.retire_grant(KeyId=kid, GrantId=g2["GrantId"])
check("RevokeGrant/RetireGrant", kms.list_grants(KeyId=kid)["Grants"] == [])
sched = kms.schedule_key_deletion(KeyId=kid2, PendingWindowInDays=30)
check("ScheduleKeyDeletion", sched["KeyState"] == "PendingDeletion" and sched["PendingWindowInDays"] == 30)
check("CancelKeyDeletion", kms.cancel_key_deletion(KeyId=kid2)["KeyId"] == ACCOUNT_PREFIX + "key/" + kid2)
kms.delete_alias(AliasName=alias)
check("DeleteAlias", code(kms.describe_key, KeyId=alias) == "NotFoundException")
pair = kms.generate_data_key_pair(KeyId=kid, KeyPairSpec="ECC_NIST_P256", EncryptionContext={"app": "pair"})
opened = kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"], EncryptionContext={"app": "pair"})
_priv = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], password=None)
check("GenerateDataKeyPair: the sealed private key decrypts to the plaintext one, which matches the public key",
      opened["Plaintext"] == pair["PrivateKeyPlaintext"] and pair["KeyPairSpec"] == "ECC_NIST_P256"
      and _priv.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == pair["PublicKey"])
check("GetParametersForImport -> UnsupportedOperationException",
      code(kms.get_parameters_for_import, KeyId=kid, WrappingAlgorithm="RSAES_OAEP_SHA_256",
           WrappingKeySpec="RSA_2048") == "UnsupportedOperationException")
check("CreateKey RSA -> UnsupportedOperationException", code(kms.create_key, KeySpec="RSA_2048") == "UnsupportedOperationException")
check("an ARN of another region -> NotFoundException",
      code(kms.describe_key, KeyId=arn.replace("us-east-1", "eu-west-1")) == "NotFoundException")


# Raw HTTP: the protocol's errors.
def raw(target, body, sign=True, tamper=None, headers=None):
    h = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    h.update(headers or {})
    if sign:
        req = AWSRequest(method="POST", url=ENDPOINT + "/", data=body, headers=h)
        SigV4Auth(boto3.Session().get_credentials(), "kms", "us-east-1").add_auth(req)
        h = dict(req.headers.items())
    if tamper is not None:
        body = tamper
    r = urllib.request.Request(ENDPOINT + "/", data=body, headers=h, method="POST")
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, {"__raw": text[:100]}


def expect(name, result, status, kind):
    st, js = result
    check(name, st == status and js.get("__type") == kind and js.get("message"), f"{st} {js}")


expect("malformed JSON", raw("TrentService.DescribeKey", b"{nope"), 400, "SerializationException")
expect("a number where a string goes", raw("TrentService.DescribeKey", b'{"KeyId": 5}'), 400, "SerializationException")
expect("a blob that is not base64", raw("TrentService.Encrypt", json.dumps({"KeyId": kid, "Plaintext": "!!"}).encode()), 400, "SerializationException")
expect("a missing required field", raw("TrentService.Encrypt", json.dumps({"KeyId": kid}).encode()), 400, "ValidationException")
expect("an unknown operation", raw("TrentService.Frobnicate", b"{}"), 400, "UnknownOperationException")
expect("another service's target", raw("DynamoDB_20120810.ListTables", b"{}"), 400, "UnknownOperationException")
expect("an import operation", raw("TrentService.ImportKeyMaterial", b"{}"), 400, "UnsupportedOperationException")
expect("a 2 MiB body", raw("TrentService.Encrypt", b" " * (2 << 20)), 400, "SerializationException")
expect("unsigned", raw("TrentService.ListKeys", b"{}", sign=False), 400, "MissingAuthenticationTokenException")
expect("a body changed after signing", raw("TrentService.DescribeKey", json.dumps({"KeyId": kid}).encode(),
                                           tamper=json.dumps({"KeyId": kid2}).encode()), 400, "InvalidSignatureException")
expect("a malformed Authorization header",
       raw("TrentService.ListKeys", b"{}", sign=False, headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"}),
       400, "IncompleteSignatureException")
st, js = raw("TrentService.RetireKeyVersions", json.dumps({"KeyId": kid, "BelowVersion": 2}).encode())
check("the RetireKeyVersions extension", st == 200, f"{st} {js}")
old = kms.encrypt(KeyId=kid, Plaintext=b"y")["CiphertextBlob"]
kms.rotate_key_on_demand(KeyId=kid)
st, js = raw("TrentService.RetireKeyVersions", json.dumps({"KeyId": kid, "BelowVersion": 3}).encode())
check("RetireKeyVersions below the current version", st == 200, f"{st} {js}")
try:
    kms.decrypt(CiphertextBlob=old)
    check("a retired version -> KMSInvalidStateException naming it", False)
except ClientError as e:
    check("a retired version -> KMSInvalidStateException naming it",
          e.response["Error"]["Code"] == "KMSInvalidStateException" and "retired" in e.response["Error"]["Message"],
          str(e.response["Error"]))

# The aws cli.
with tempfile.TemporaryDirectory() as d:
    pt = os.path.join(d, "pt")
    with open(pt, "wb") as f:
        f.write(b"aws cli round trip")

    def aws(*args):
        return subprocess.run([AWS, "kms", *args, "--endpoint-url", ENDPOINT], capture_output=True, text=True, timeout=120)

    out = aws("create-key", "--query", "KeyMetadata.Arn", "--output", "text")
    key = out.stdout.strip()
    check("aws kms create-key", out.returncode == 0 and key.startswith(ACCOUNT_PREFIX + "key/"), out.stderr[-200:])
    out = aws("encrypt", "--key-id", key, "--plaintext", "fileb://" + pt, "--query", "CiphertextBlob", "--output", "text")
    ct = os.path.join(d, "ct")
    with open(ct, "wb") as f:
        f.write(base64.b64decode(out.stdout.strip() or "AA=="))
    out = aws("decrypt", "--ciphertext-blob", "fileb://" + ct, "--query", "Plaintext", "--output", "text")
    check("aws kms encrypt/decrypt", out.returncode == 0 and base64.b64decode(out.stdout.strip() or "") == b"aws cli round trip",
          out.stderr[-200:])
    out = aws("describe-key", "--key-id", "alias/none")
    check("aws kms error names the exception", out.returncode != 0 and "NotFoundException" in out.stderr, out.stderr[-200:])

# The AWS Encryption SDK.
import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy

esdk = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[arn])
data = os.urandom(50_000)
ctext, _ = esdk.encrypt(source=data, key_provider=provider, encryption_context={"purpose": "ci"})
ptext, header = esdk.decrypt(source=ctext, key_provider=provider)
check("Encryption SDK round trip", ptext == data and header.encryption_context.get("purpose") == "ci")
other = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[kms.create_key()["KeyMetadata"]["Arn"]])
try:
    esdk.decrypt(source=ctext, key_provider=other)
    check("Encryption SDK refuses another key", False)
except Exception:
    check("Encryption SDK refuses another key", True)

print(f"{passed}/{total} checks pass")
sys.exit(0 if passed == total else 1)
