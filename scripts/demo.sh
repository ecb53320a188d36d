#!/usr/bin/env bash
# A demo of the main job against the QEMU token: keys, encryption with context, rotation,
# envelope encryption of a directory's files, and a release signed on the token and verified
# with openssl. Does its own set-up. The token's state lives in a throw-away PKMS_HOME unless
# you set one; the demo stops its QEMU at the end with `pkms token stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== building pkms (release; carries the QEMU token firmware)"
cargo build --release --quiet --bin pkms
PKMS="$PWD/target/release/pkms"
export PKMS_HOME="${PKMS_HOME:-$(mktemp -d /tmp/pkms-demo.XXXXXX)}"
work=$(mktemp -d /tmp/pkms-demo-files.XXXXXX)
trap '"$PKMS" --quiet token stop; rm -rf "$work"' EXIT
run() { printf '\n$ pkms %s\n' "$*"; "$PKMS" "$@"; }
b64() { python3 -c 'import base64,sys; print(base64.b64decode(sys.stdin.read()).decode())'; }

echo "== the QEMU token (state in $PKMS_HOME): emulated, open until initialised"
run token start
run info

echo "== protect it: an administrator PIN (and a PUK to unblock it); from now on every call authenticates"
export PKMS_PIN=246810
PKMS_PUK=demo-puk-0123456789 run init --audit-full overwrite --output text

echo "== every call runs in an encrypted session with the token's device key, pinned on first use"
run info --query DeviceKeyFingerprint --output text
echo "pinned in \$PKMS_HOME/known_device_keys: $(grep -v '^#' "$PKMS_HOME/known_device_keys" | cut -d' ' -f1-2)"

KEY=$("$PKMS" create-key --description "demo data key" --query KeyMetadata.KeyId --output text)
run create-alias --alias-name alias/demo --target-key-id "$KEY"
run describe-key --key-id alias/demo

echo "== encrypt with an encryption context, decrypt with the pairs in another order"
BLOB=$("$PKMS" encrypt --key-id alias/demo --plaintext "$(printf 'attack at dawn' | base64)" \
  --encryption-context app=demo --encryption-context env=test --query CiphertextBlob --output text)
echo "CiphertextBlob: ${BLOB:0:60}…"
"$PKMS" decrypt --ciphertext-blob "$BLOB" --encryption-context env=test --encryption-context app=demo \
  --query Plaintext --output text | b64
if "$PKMS" decrypt --ciphertext-blob "$BLOB" --encryption-context app=other 2>"$work/err"; then
  echo "unexpected: wrong context decrypted"; exit 1
else
  echo "wrong context refused: $(head -c 200 "$work/err")"
fi

echo "== rotate: the old blob still decrypts, new ones use version 2"
echo "(as in KMS, key management takes the key id or key ARN, not an alias)"
run rotate-key-on-demand --key-id "$KEY"
run list-key-rotations --key-id "$KEY" --include-key-material ALL_KEY_MATERIAL --output text
"$PKMS" decrypt --ciphertext-blob "$BLOB" --encryption-context env=test --encryption-context app=demo \
  --query Plaintext --output text | b64

echo "== envelope encryption of a directory's files (one data key per file)"
mkdir -p "$work/docs" "$work/enc" "$work/dec"
head -c 5000000 /dev/urandom > "$work/docs/backup.bin"
printf 'hello\n' > "$work/docs/notes.txt"
run encrypt-file --key-id alias/demo --encryption-context purpose=backup --out-dir "$work/enc" "$work/docs"
ls -l "$work/enc"
for f in backup.bin notes.txt; do
  "$PKMS" decrypt-file "$work/enc/$f.pkms" "$work/dec/$f"
  cmp "$work/docs/$f" "$work/dec/$f" && echo "$f: decrypted and identical"
done

echo "== sign a release on the token, verify it with openssl (no token needed)"
SK=$("$PKMS" create-key --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY --description "release signing" \
  --query KeyMetadata.KeyId --output text)
"$PKMS" get-public-key --key-id "$SK" --output pem > "$work/release.pem"
tar -C "$work" -czf "$work/release.tar.gz" docs
run sign-file --key-id "$SK" "$work/release.tar.gz"
openssl dgst -sha256 -verify "$work/release.pem" -signature "$work/release.tar.gz.sig" "$work/release.tar.gz"
run verify-file --public-key "$work/release.pem" --signature "$work/release.tar.gz.sig" "$work/release.tar.gz"

echo "== the token's audit log: hash-chained, checkpoint signed by the device key, verified offline"
run audit export --out "$work/audit.log" --public-key-out "$work/device.pem"
run audit verify "$work/audit.log" --public-key "$work/device.pem"
if env -u PKMS_PIN "$PKMS" describe-key --key-id alias/demo </dev/null 2>"$work/err"; then
  echo "unexpected: no PIN, yet allowed"; exit 1
else
  echo "without the PIN: $(head -c 160 "$work/err")"
fi

echo "== any KMS client: pkms serve speaks KMS's wire protocol (SigV4-signed JSON 1.1)"
export AWS_ACCESS_KEY_ID=AKIDDEMO AWS_SECRET_ACCESS_KEY=demo-secret-0123456789 AWS_DEFAULT_REGION=us-east-1
cat > "$work/credentials.json" <<JSON
{"Credentials": [{"AccessKeyId": "$AWS_ACCESS_KEY_ID", "SecretAccessKey": "$AWS_SECRET_ACCESS_KEY",
                  "Principal": "admin", "PinEnv": "PKMS_PIN"}]}
JSON
printf '\n$ pkms serve --region us-east-1 --listen 127.0.0.1:0 --credentials credentials.json &\n'
"$PKMS" serve --region us-east-1 --listen 127.0.0.1:0 --credentials "$work/credentials.json" >"$work/serve.out" &
server=$!
trap 'rc=$?; kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; "$PKMS" --quiet token stop; rm -rf "$work"; exit $rc' EXIT
for _ in $(seq 1 120); do grep -q '^export' "$work/serve.out" 2>/dev/null && break; sleep 0.25; done
cat "$work/serve.out"
eval "$(grep '^export AWS_ENDPOINT_URL_KMS=' "$work/serve.out")"
AWS="$PWD/target/kms-clients-venv/bin/aws"
printf 'attack at dawn' > "$work/pt.txt"
printf '\n$ aws kms encrypt --key-id alias/demo --plaintext fileb://pt.txt\n'
"$AWS" kms encrypt --key-id alias/demo --plaintext "fileb://$work/pt.txt" --output json > "$work/enc.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("KeyId:", d["KeyId"]); print("CiphertextBlob:", d["CiphertextBlob"][:60] + "…")' "$work/enc.json"
python3 -c 'import base64,json,sys; open(sys.argv[2],"wb").write(base64.b64decode(json.load(open(sys.argv[1]))["CiphertextBlob"]))' "$work/enc.json" "$work/ct.bin"
printf '\n$ aws kms decrypt --ciphertext-blob fileb://ct.bin --query Plaintext --output text | base64 -d\n'
"$AWS" kms decrypt --ciphertext-blob "fileb://$work/ct.bin" --query Plaintext --output text | b64
printf '\n$ curl --aws-sigv4 "aws:amz:us-east-1:kms" … -H "X-Amz-Target: TrentService.DescribeKey"\n'
curl -sS --aws-sigv4 "aws:amz:us-east-1:kms" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: TrentService.DescribeKey' \
  -d '{"KeyId": "alias/demo"}' "$AWS_ENDPOINT_URL_KMS/" |
  python3 -c 'import json,sys; m=json.load(sys.stdin)["KeyMetadata"]; print(json.dumps({"KeyMetadata": {k: m[k] for k in ("Arn", "KeyId", "KeyState", "CreationDate", "Origin")}}, indent=4))'
printf '\n$ curl … with a wrong secret\n'
curl -sS --aws-sigv4 "aws:amz:us-east-1:kms" --user "$AWS_ACCESS_KEY_ID:not-the-secret" \
  -H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: TrentService.ListKeys' -d '{}' "$AWS_ENDPOINT_URL_KMS/"
echo

echo
echo "Demo done. The token keeps its keys in $PKMS_HOME/token.flash."
