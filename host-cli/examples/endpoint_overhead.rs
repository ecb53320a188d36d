//! The KMS endpoint's own cost: Encrypt 32 B on the in-process token called directly through
//! the library (in an encrypted session, as the server calls it) against the same call made
//! with aws-sdk-kms through `pkms serve` (HTTP, JSON, SigV4 signing and verification). Prints
//! Markdown rows for BENCHMARKS.md (scripts/bench-kms-endpoint.sh runs it).
//!
//! The difference includes the Rust SDK's own work (building and signing the request, parsing
//! the answer), so it bounds the endpoint's overhead from above.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use pkms_lib::inprocess::InProcessToken;
use pkms_lib::model::CreateKeyParams;
use pkms_lib::Client;

const N: usize = 2000;

fn p50_p99(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    (at(0.50), at(0.99))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let pkms = match std::env::var_os("PKMS_BIN") {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            std::env::current_exe()?.parent().and_then(|p| p.parent()).ok_or("no target dir")?.join("pkms")
        }
    };

    // Direct library calls.
    let mut client = Client::connect(InProcessToken::open(&dir.path().join("direct.flash"))?)?;
    let device = client.device_key()?;
    client.open_session(&device)?;
    let key = client.create_key(&CreateKeyParams::default())?.key_id.to_string();
    let mut direct = Vec::with_capacity(N);
    for i in 0..N + N / 10 {
        let t = Instant::now();
        client.encrypt(&key, &[7u8; 32], pkms_lib::client::NO_CONTEXT)?;
        if i >= N / 10 {
            direct.push(t.elapsed());
        }
    }
    drop(client);

    // Through pkms serve.
    let home = dir.path().join("home");
    let mut server = Command::new(&pkms)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("PKMS_HOME", &home)
        .env("PKMS_DEVICE", format!("inprocess:{}", dir.path().join("served.flash").display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut lines = BufReader::new(server.stdout.take().ok_or("no stdout")?).lines();
    let url = loop {
        let line = lines.next().ok_or("pkms serve ended")??;
        if let Some(u) = line.strip_prefix("export AWS_ENDPOINT_URL_KMS=") {
            break u.to_owned();
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let served = rt.block_on(async {
        let conf = aws_sdk_kms::Config::builder()
            .endpoint_url(&url)
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIDBENCH",
                "bench",
                None,
                None,
                "bench",
            ))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        let kms = aws_sdk_kms::Client::from_conf(conf);
        let key = kms.create_key().send().await?.key_metadata.ok_or("no metadata")?.key_id().to_owned();
        let mut samples = Vec::with_capacity(N);
        for i in 0..N + N / 10 {
            let t = Instant::now();
            kms.encrypt().key_id(&key).plaintext(Blob::new(vec![7u8; 32])).send().await?;
            if i >= N / 10 {
                samples.push(t.elapsed());
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(samples)
    });
    let _ = server.kill();
    let _ = server.wait();
    let served = served?;

    let (d50, d99) = p50_p99(direct);
    let (s50, s99) = p50_p99(served);
    let overhead = s50 - d50;
    println!("| Measurement | Figure | Goal | Status |");
    println!("|---|---|---|---|");
    println!("| Encrypt 32 B, direct library call (in-process token, session) | p50 {d50:.3} ms, p99 {d99:.3} ms (n={N}) |  |  |");
    println!("| Encrypt 32 B, aws-sdk-kms through `pkms serve` (same token kind) | p50 {s50:.3} ms, p99 {s99:.3} ms (n={N}) |  |  |");
    println!(
        "| Endpoint overhead (HTTP + JSON + SigV4, the SDK's own work included) | {overhead:.3} ms p50 | ≤ 0.5 ms p50 | {} |",
        if overhead <= 0.5 { "meets" } else { "misses" }
    );
    Ok(())
}
