#!/usr/bin/env bash
# The KMS endpoint against the Python KMS clients (boto3, the aws cli, the AWS Encryption SDK)
# and curl's SigV4: `pkms serve` in front of a private QEMU token, signatures checked against a
# credentials file. Needs the virtual environment of scripts/setup.sh. scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PKMS_KMS_CLIENTS_VENV:-$PWD/target/kms-clients-venv}"
pkms="${PKMS_BIN:-$PWD/target/release/pkms}"
[ -x "$pkms" ] || cargo build -q --release --bin pkms
work=$(mktemp -d "${TMPDIR:-/tmp}/pkms-kms-clients.XXXXXX")
export PKMS_HOME="$work/home" PKMS_IDLE_SECS=120
unset PKMS_DEVICE PKMS_LINK
server=
cleanup() {
  local rc=$?
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  "$pkms" token stop >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
mkdir -p "$PKMS_HOME"
export AWS_ACCESS_KEY_ID=AKIDCLIENTS AWS_SECRET_ACCESS_KEY=clients-secret AWS_DEFAULT_REGION=us-east-1
cat > "$work/credentials.json" <<JSON
{"Credentials": [{"AccessKeyId": "$AWS_ACCESS_KEY_ID", "SecretAccessKey": "$AWS_SECRET_ACCESS_KEY", "Principal": "admin"}]}
JSON
"$pkms" serve --listen 127.0.0.1:0 --credentials "$work/credentials.json" >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for _ in $(seq 1 240); do
  grep -q '^export AWS_ENDPOINT_URL_KMS=' "$work/serve.out" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.err"; echo "pkms serve ended"; exit 1; }
  sleep 0.25
done
url=$(sed -n 's/^export AWS_ENDPOINT_URL_KMS=//p' "$work/serve.out")
[ -n "$url" ] || { cat "$work/serve.err"; echo "pkms serve printed no URL"; exit 1; }
export AWS_ENDPOINT_URL_KMS="$url"
echo "pkms serve at $url (QEMU token)"

# curl signs with SigV4 by itself: a request nobody here signed.
body=$(curl -sS --fail-with-body --aws-sigv4 "aws:amz:us-east-1:kms" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: TrentService.GenerateRandom' \
  -d '{"NumberOfBytes": 16}' "$url/")
python3 -c 'import base64,json,sys; assert len(base64.b64decode(json.loads(sys.argv[1])["Plaintext"])) == 16' "$body"
bad=$(curl -sS --aws-sigv4 "aws:amz:us-east-1:kms" --user "$AWS_ACCESS_KEY_ID:wrong-secret" \
  -H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: TrentService.ListKeys' -d '{}' "$url/")
case "$bad" in *InvalidSignatureException*) ;; *) echo "a wrong secret was not refused: $bad"; exit 1 ;; esac
echo "curl --aws-sigv4: signed request answered, wrong secret refused"

# The Encryption SDK logs its refusal of a wrong key on stderr; keep only failures and the count.
"$venv/bin/python" tests/kms_clients/endpoint_clients.py 2>"$work/clients.err"
