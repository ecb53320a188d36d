//! The HTTP side: `POST /` with `X-Amz-Target: TrentService.<Operation>` and a JSON body of at
//! most [`MAX_BODY`] bytes, SigV4-verified ([`super::sigv4`]), answered with KMS's JSON or
//! `{"__type", "message"}`. hyper serves HTTP/1.1 on tokio (plain, or TLS with rustls); each
//! operation runs on a blocking thread and waits its turn on the token's lock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::credentials::Credentials;
use super::errors::ApiError;
use super::ops::{self, Service};
use super::sigv4::{self, Expectation, SignedRequest};

/// The largest request body read (KMS's largest inputs are a few blobs of at most 6144 bytes).
pub const MAX_BODY: usize = 1 << 20;

/// Who may call, and as whom.
pub enum Access {
    /// An open token: any well-formed, in-scope, in-time signature is accepted (its secret is
    /// not known, so not checked), as local-kms does; one unauthenticated session.
    Open,
    /// Access keys whose signatures are verified; each maps to a principal (`None` on an open
    /// token given a credentials file: signatures checked, one unauthenticated session).
    Keys(Credentials),
}

/// Everything a request needs.
pub struct Endpoint {
    /// The operations and the token.
    pub service: Service,
    /// Who may call.
    pub access: Access,
    /// Whether the token is initialised (principals get their own sessions).
    pub initialised: bool,
}

fn json_response(status: u16, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    json_response(e.status, e.body())
}

/// Answers one request.
pub async fn answer(ep: Arc<Endpoint>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match answer_inner(ep, req).await {
        Ok(body) => json_response(200, body),
        Err(e) => error_response(&e),
    }
}

async fn answer_inner(ep: Arc<Endpoint>, req: Request<Incoming>) -> Result<Vec<u8>, ApiError> {
    let (parts, body) = req.into_parts();
    if parts.method != hyper::Method::POST {
        return Err(ApiError::new("UnknownOperationException", "KMS takes POST / with X-Amz-Target"));
    }
    let body = Limited::new(body, MAX_BODY).collect().await.map_err(|_| {
        ApiError::new(
            "SerializationException",
            format!("The request body exceeds {MAX_BODY} bytes or was cut short"),
        )
    })?;
    let body = body.to_bytes();
    // Signature first (also for unknown targets): nothing in the request is acted on before.
    let headers: Vec<(String, &[u8])> =
        parts.headers.iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes())).collect();
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers,
        body: &body,
    };
    let checked =
        sigv4::check(&signed, &Expectation { region: &ep.service.scope.region, now: SystemTime::now() })?;
    let principal = match &ep.access {
        Access::Open => None,
        Access::Keys(creds) => {
            let entry = creds.get(checked.access_key_id()).ok_or_else(|| {
                ApiError::new(
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                )
            })?;
            checked.verify(&entry.secret_access_key)?;
            ep.initialised.then(|| entry.principal.clone())
        }
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::new("UnknownOperationException", "X-Amz-Target header is missing"))?
        .to_owned();
    let op = target
        .strip_prefix("TrentService.")
        .ok_or_else(|| ApiError::new("UnknownOperationException", format!("Unknown target {target}")))?
        .to_owned();
    if !ops::SERVED.contains(&op.as_str()) {
        // Answered without the token.
        return ops::handle(&ep.service, &op, &body, None);
    }
    let ep2 = ep.clone();
    tokio::task::spawn_blocking(move || ops::handle(&ep2.service, &op, &body, principal.as_deref()))
        .await
        .map_err(|_| ApiError::new("KMSInternalException", "the operation failed inside the server"))?
}

/// TLS settings: a certificate chain and its key, PEM files.
pub struct Tls {
    /// The acceptor built from them.
    pub acceptor: tokio_rustls::TlsAcceptor,
}

impl Tls {
    /// Reads `cert` (PEM chain) and `key` (PEM private key).
    pub fn from_files(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<Tls> {
        let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(cert)?))
            .collect::<Result<Vec<_>, _>>()?;
        let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(std::fs::File::open(key)?))?
            .ok_or_else(|| anyhow::anyhow!("{}: no private key", key.display()))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        Ok(Tls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) })
    }
}

/// Serves on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, ep: Arc<Endpoint>, tls: Option<Tls>) {
    let tls = tls.map(Arc::new);
    loop {
        let (stream, _peer): (tokio::net::TcpStream, SocketAddr) = match listener.accept().await {
            Ok(s) => s,
            Err(_) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let ep = ep.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let ep = ep.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(ep, req).await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(tls) => {
                    if let Ok(stream) = tls.acceptor.accept(stream).await {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            }
        });
    }
}
