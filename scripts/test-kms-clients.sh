#!/usr/bin/env bash
# The KMS endpoint against the Python KMS clients (boto3, the aws cli, the AWS Encryption SDK)
# and curl's SigV4: `pkms serve` in front of a private, initialised QEMU token, signatures checked
# against a credentials file (the clients act as its administrator). Needs the virtual environment of scripts/setup.sh. scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PKMS_KMS_CLIENTS_VENV:-$PWD/target/kms-clients-venv}"
pkms="${PKMS_BIN:-$PWD/target/release/pkms}"
[ -x "$pkms" ] || cargo build -q --release --bin pkms
work=$(mktemp -d "${TMPDIR:-/tmp}/pkms-kms-clients.XXXXXX")
export PKMS_HOME="$work/home" PKMS_IDLE_SECS=120
unset PKMS_DEVICE PKMS_LINK
server=
tls_server=
cleanup() {
  local rc=$?
  if [ -n "$tls_server" ]; then kill "$tls_server" 2>/dev/null || true; wait "$tls_server" 2>/dev/null || true; fi
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  "$pkms" token stop >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
mkdir -p "$PKMS_HOME"
export AWS_ACCESS_KEY_ID=AKIDCLIENTS AWS_SECRET_ACCESS_KEY=clients-secret AWS_DEFAULT_REGION=us-east-1
# An initialised token: the clients act as its administrator (grants need principals: carol).
PKMS_PIN=246810 PKMS_PUK=clients-puk-0123 "$pkms" --quiet init
PKMS_PIN=246810 PKMS_NEW_PIN=135790 "$pkms" --quiet create-principal --name carol --role user
export CLIENTS_ADMIN_PIN=246810
cat > "$work/credentials.json" <<JSON
{"Credentials": [{"AccessKeyId": "$AWS_ACCESS_KEY_ID", "SecretAccessKey": "$AWS_SECRET_ACCESS_KEY",
                  "Principal": "admin", "PinEnv": "CLIENTS_ADMIN_PIN"}]}
JSON
"$pkms" serve --region us-east-1 --listen 127.0.0.1:0 --credentials "$work/credentials.json" >"$work/serve.out" 2>"$work/serve.err" &
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

# TLS: a non-loopback listener serves HTTPS with the given certificate (here a throw-away one
# for 127.0.0.1), and is refused without one.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=pkms-test \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
if "$pkms" serve --device "inprocess:$work/tls.flash" --listen 0.0.0.0:0 >/dev/null 2>"$work/notls.err"; then
  echo "a non-loopback listener without TLS was not refused"; exit 1
fi
grep -q -- '--tls-cert' "$work/notls.err"
"$pkms" serve --device "inprocess:$work/tls.flash" --listen 0.0.0.0:0 --tls-cert "$work/tls.crt" \
  --tls-key "$work/tls.key" >"$work/tls.out" 2>/dev/null &
tls_server=$!
for _ in $(seq 1 120); do grep -q '^export' "$work/tls.out" 2>/dev/null && break; sleep 0.25; done
tls_url=$(sed -n 's/^export AWS_ENDPOINT_URL_KMS=//p' "$work/tls.out")
case "$tls_url" in https://0.0.0.0:*) ;; *) echo "the TLS server printed $tls_url"; exit 1 ;; esac
tls_url="https://127.0.0.1:${tls_url##*:}"
body=$(curl -sS --fail-with-body --cacert "$work/tls.crt" --aws-sigv4 "aws:amz:us-east-1:kms" \
  --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H 'Content-Type: application/x-amz-json-1.1' \
  -H 'X-Amz-Target: TrentService.GenerateRandom' -d '{"NumberOfBytes": 8}' "$tls_url/")
python3 -c 'import base64,json,sys; assert len(base64.b64decode(json.loads(sys.argv[1])["Plaintext"])) == 8' "$body"
if curl -sS -o /dev/null "http://127.0.0.1:${tls_url##*:}/" 2>/dev/null; then echo "plain HTTP answered on the TLS port"; exit 1; fi
kill "$tls_server" 2>/dev/null || true; wait "$tls_server" 2>/dev/null || true
tls_server=
echo "TLS: HTTPS answered with the given certificate; plain HTTP and a non-loopback listener without TLS refused"

# The Encryption SDK logs its refusal of a wrong key on stderr; keep only failures and the count.
"$venv/bin/python" tests/kms_clients/endpoint_clients.py 2>"$work/clients.err"
