"""One boto3 client and one workload (Encrypt 32 B, Decrypt, GenerateDataKey AES_256, Sign
ECDSA_SHA_256) against several KMS endpoints, sequentially, in one run; prints a Markdown table
(requests/s and p50/p99 per operation and endpoint). scripts/bench-kms-endpoint.sh runs it.

Usage: python bench-kms-endpoint.py N NAME=URL [NAME=URL …]
"""
import os, statistics, sys, time

import boto3


def percentile(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def bench(url, n):
    kms = boto3.client("kms", endpoint_url=url, region_name="us-east-1",
                       aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench-secret")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    sign_key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=os.urandom(32))["CiphertextBlob"]
    ops = {
        "Encrypt 32 B": lambda: kms.encrypt(KeyId=key, Plaintext=b"x" * 32),
        "Decrypt": lambda: kms.decrypt(CiphertextBlob=blob),
        "GenerateDataKey AES_256": lambda: kms.generate_data_key(KeyId=key, KeySpec="AES_256"),
        "Sign (RAW, ECDSA_SHA_256)": lambda: kms.sign(KeyId=sign_key, Message=b"release", SigningAlgorithm="ECDSA_SHA_256"),
    }
    out = {}
    for name, op in ops.items():
        for _ in range(max(5, n // 20)):  # warm-up
            op()
        samples = []
        start = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            op()
            samples.append(time.perf_counter() - t)
        total = time.perf_counter() - start
        out[name] = (n / total, percentile(samples, 50) * 1e3, percentile(samples, 99) * 1e3)
    return out


def main():
    n = int(sys.argv[1])
    targets = [a.split("=", 1) for a in sys.argv[2:]]
    results = {name: bench(url, n) for name, url in targets}
    load = os.getloadavg()[0]
    print(f"One boto3 client ({boto3.__version__}), sequential requests, {n} per operation after a warm-up;"
          " requests/s over the whole run, latency per request as the client sees it"
          f" (load average {load:.2f} at the end: wall-time figures are only as quiet as the machine was).\n")
    print("| Operation | " + " | ".join(name for name, _ in targets) + " |")
    print("|---|" + "---|" * len(targets))
    for op in next(iter(results.values())):
        cells = []
        for name, _ in targets:
            rps, p50, p99 = results[name][op]
            cells.append(f"{rps:.0f} req/s; p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        print(f"| {op} | " + " | ".join(cells) + " |")
    first, last = targets[0][0], targets[-1][0]
    slower = [op for op in results[first] if results[first][op][0] < results[last][op][0]]
    print(f"\nGoal: {first} at least {last}'s requests/s on every operation: "
          + ("meets" if not slower else "misses (" + ", ".join(slower) + ")") + ".")
    for other, _ in targets[1:]:
        ratios = [results[first][op][0] / results[other][op][0] for op in results[first]]
        print(f"\n{first} vs {other}: requests/s ratio per operation "
              + ", ".join(f"{op} {r:.2f}×" for op, r in zip(results[first], ratios))
              + f" (geometric mean {statistics.geometric_mean(ratios):.2f}×).")


if __name__ == "__main__":
    main()
