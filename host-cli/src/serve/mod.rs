//! `pkms serve`: the token behind KMS's own wire protocol (JSON 1.1 over HTTP, `X-Amz-Target:
//! TrentService.<Operation>`, SigV4), so boto3, the aws cli, the AWS SDKs and the AWS Encryption
//! SDK work against it with `AWS_ENDPOINT_URL_KMS`. docs/protocol.md describes the endpoint.
//!
//! * [`server`]: HTTP (hyper on tokio; TLS with rustls), body limit, SigV4 and dispatch.
//! * [`sigv4`]: signature verification.
//! * [`credentials`]: the `--credentials` file (access key → principal).
//! * [`ops`]: the operations, KMS JSON in and out (the model types in KMS's wire style).
//! * [`token`]: one link to the token, one session per principal, calls queued.
//! * [`errors`]: KMS exceptions and HTTP statuses; the token's codes mapped to them.

pub mod credentials;
pub mod errors;
pub mod ops;
pub mod server;
pub mod sigv4;
pub mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use pkms_lib::pins::PinStore;
use zeroize::Zeroizing;

use crate::cli::{usage, Context};
use credentials::Credentials;
use server::{Access, Endpoint, Tls};
use token::{Connector, Logins, Token};

/// `pkms serve`'s options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (HOST:PORT; port 0 picks a free one). A non-loopback address
    /// needs --tls-cert and --tls-key (or --insecure-no-tls).
    #[arg(long, default_value = "127.0.0.1:4599")]
    pub listen: String,
    /// Access keys, their secrets and the principal each acts as (JSON; see docs/cli.md).
    /// Needed on an initialised token; on an open token it makes the server check signatures.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// TLS certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (requests and keys travel unencrypted).
    #[arg(long)]
    pub insecure_no_tls: bool,
}

/// Reads a principal's PIN as its credentials entry says (environment, file, else prompt).
fn pin_for(entry: &credentials::Entry) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if let Some(var) = &entry.pin_env {
        let v = std::env::var(var)
            .map_err(|_| usage(format!("PinEnv {var} (for {}) is not set", entry.principal)))?;
        return Ok(Zeroizing::new(v.into_bytes()));
    }
    if let Some(file) = &entry.pin_file {
        return crate::cli::auth::read_secret_file(file, "PinFile");
    }
    crate::cli::auth::prompt(
        &format!("PIN for {}", entry.principal),
        "give it with PinEnv or PinFile in the credentials file",
    )
}

/// Runs `pkms serve` until the process is stopped.
pub fn run(args: ServeArgs, ctx: &mut Context) -> anyhow::Result<()> {
    let addr: SocketAddr = args
        .listen
        .parse()
        .map_err(|_| usage(format!("--listen {}: expected HOST:PORT, e.g. 127.0.0.1:4599", args.listen)))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => {
            Some(Tls::from_files(c, k).map_err(|e| usage(format!("--tls-cert/--tls-key: {e}")))?)
        }
        _ => None,
    };
    if !addr.ip().is_loopback() && tls.is_none() && !args.insecure_no_tls {
        return Err(usage(format!(
            "--listen {addr} is not a loopback address: give --tls-cert and --tls-key, or --insecure-no-tls to \
             serve plain HTTP anyway"
        )));
    }
    let credentials = args.credentials.as_deref().map(Credentials::load).transpose()?;

    // First contact: the token's state (open or initialised), the device key pinned in the
    // home (made private if missing).
    let initialised = ctx.raw_client()?.get_info()?.initialized;
    ctx.disconnect();
    let mut logins: Logins = Logins::new();
    let access = match (credentials, initialised) {
        (None, true) => {
            return Err(usage(
                "this token is initialised: give --credentials FILE mapping access keys to principals (docs/cli.md)",
            ))
        }
        (None, false) => {
            eprintln!(
                "warning: the token is open (not initialised): any well-formed SigV4 signature is accepted, with any \
                 access key and secret, and anyone holding the token can use its keys. `pkms init` protects it; then \
                 serve with --credentials."
            );
            Access::Open
        }
        (Some(c), init) => {
            if init {
                for e in c.entries() {
                    if !logins.contains_key(&e.principal) {
                        logins.insert(e.principal.clone(), pin_for(e)?);
                    }
                }
            } else {
                eprintln!("warning: the token is open (not initialised): signatures are checked, principals are not.");
            }
            Access::Keys(c)
        }
    };

    let device = ctx.device_spec().cloned();
    let home = ctx.home().to_path_buf();
    let opts = ctx.launch_options();
    let pin_name = ctx.pin_name();
    let connector: Connector = Box::new(move || {
        let mut client = pkms_lib::connect::open_with(device.as_ref(), &home, &opts)?;
        let key = client.device_key()?;
        if let Some(name) = &pin_name {
            PinStore::in_home(&home).check(name, &key)?;
        }
        Ok((client, key))
    });
    let token = Token::new(connector, logins);
    // The CLI's --region / --account-id (and AWS_REGION, AWS_DEFAULT_REGION, PKMS_ACCOUNT_ID).
    let scope = ctx.scope().clone();
    let region = scope.region.clone();
    let endpoint = Arc::new(Endpoint { service: ops::Service { token, scope }, access, initialised });

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|e| usage(format!("--listen {addr}: {e}")))?;
        let local = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{local}");
        println!("Pocket KMS serving KMS (JSON 1.1, SigV4, region {region}) at {url}");
        println!("export AWS_ENDPOINT_URL_KMS={url}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // Until Ctrl-C (the CLI's handler marks the process interrupted).
        tokio::select! {
            () = server::serve(listener, endpoint, tls) => {}
            () = async {
                while !pkms_lib::interrupt::requested() {
                    tokio::time::sleep(pkms_lib::interrupt::POLL).await;
                }
            } => eprintln!("pkms serve: stopped"),
        }
        Ok::<(), anyhow::Error>(())
    })
}
