//! `pkms ssh-agent`: token signing keys served over the SSH agent protocol on a unix socket,
//! for ssh, ssh-keygen -Y sign and git (`gpg.format=ssh`).
//!
//! The agent holds one logged-in session with the token for its whole life; sign requests
//! become token Sign calls (ECDSA P-256: the SHA-256 DIGEST, RFC 5656; Ed25519: the RAW data),
//! one at a time. It lists and signs with the keys it was started with and refuses every other
//! request (adding or removing keys, locking, extensions) with SSH_AGENT_FAILURE. A link that
//! fails, or a session the token ended, is opened again on the next request. Ctrl-C stops it
//! and removes the socket.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use clap::Args;
use pkms_lib::error::Error;
use pkms_lib::sigformat::agent::{self, Request};
use pkms_protocol::ErrorCode;

use super::sigfiles::{token_key, token_sign, Kind, TokenKey};
use super::{usage, Context};

/// ssh-agent's arguments.
#[derive(Debug, Args)]
pub struct SshAgentArgs {
    /// A SIGN_VERIFY key to serve (key id or alias; repeatable): ECC_NIST_P256
    /// (ecdsa-sha2-nistp256), ECC_NIST_P384 (ecdsa-sha2-nistp384) or ECC_NIST_EDWARDS25519
    /// (ssh-ed25519). Its newest version signs.
    #[arg(long = "key-id", required = true, value_name = "KEY")]
    pub key_ids: Vec<String>,
    /// The socket to listen on (default: a new one in a fresh temporary directory).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// The socket's directory when pkms made it (removed with the socket on the way out).
struct Socket {
    path: PathBuf,
    temp_dir: Option<tempfile::TempDir>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(d) = self.temp_dir.take() {
            let _ = d.close();
        }
    }
}

/// Binds the socket at `path`, or at a fresh path when none is given. A socket file nobody
/// listens on any more is replaced; anything else at `path` is refused.
fn bind(path: Option<PathBuf>) -> anyhow::Result<(UnixListener, Socket)> {
    let socket = match path {
        Some(path) => {
            if let Ok(meta) = std::fs::symlink_metadata(&path) {
                if !meta.file_type().is_socket() {
                    return Err(usage(format!("{} exists and is not a socket", path.display())));
                }
                if UnixStream::connect(&path).is_ok() {
                    return Err(usage(format!("{} is in use by another agent", path.display())));
                }
                std::fs::remove_file(&path)
                    .map_err(|e| usage(format!("cannot replace the stale socket {}: {e}", path.display())))?;
            }
            Socket { path, temp_dir: None }
        }
        None => {
            // Private, as OpenSSH's own agent directories are: only its user may reach the socket.
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::Builder::new()
                .prefix("pkms-ssh-agent.")
                .permissions(std::fs::Permissions::from_mode(0o700))
                .tempdir()?;
            Socket { path: dir.path().join("agent.sock"), temp_dir: Some(dir) }
        }
    };
    let listener = UnixListener::bind(&socket.path)
        .map_err(|e| usage(format!("cannot listen on {}: {e}", socket.path.display())))?;
    // Only this user may ask for signatures.
    std::fs::set_permissions(&socket.path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok((listener, socket))
}

/// Asks for SIGINT (Ctrl-C: a clean stop) when the parent process ends, so an agent started as
/// a shell's background job (or by a script that is then killed) does not outlive it holding the
/// token. Linux only; elsewhere the agent stops on Ctrl-C or kill alone.
fn stop_with_parent() {
    #[cfg(target_os = "linux")]
    {
        let parent = rustix::process::getppid();
        let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::INT));
        if rustix::process::getppid() != parent {
            // The parent ended before the signal was asked for.
            pkms_lib::interrupt::request();
        }
    }
}

/// Runs the agent until Ctrl-C, or until the process that started it ends.
pub fn run(a: SshAgentArgs, ctx: &mut Context) -> anyhow::Result<()> {
    stop_with_parent();
    let mut keys: Vec<TokenKey> = Vec::new();
    for k in &a.key_ids {
        let key_id = ctx.key(k)?;
        let key = token_key(ctx, &key_id, None, Kind::Ssh)?;
        if ctx.client()?.describe_key(&key.key_id)?.user_presence_required {
            eprintln!(
                "{} needs a button press for every signature: touch the token when it blinks \
                 (emulated tokens cannot confirm presence, so their signatures fail)",
                key.arn
            );
        }
        if !keys.iter().any(|k| k.key_id == key.key_id) {
            keys.push(key);
        }
    }
    let (listener, socket) = bind(a.socket)?;
    {
        // One write: a reader that takes the first line and goes away does not stop the agent.
        let lines = format!(
            "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;\nSSH_AGENT_PID={}; export SSH_AGENT_PID;\n",
            socket.path.display(),
            std::process::id()
        );
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(lines.as_bytes()).and_then(|()| out.flush());
    }
    let log = !ctx.quiet;
    if log {
        for k in &keys {
            eprintln!("serving {} version {}: {}", k.arn, k.version, k.public.authorized_keys_line(&k.arn));
        }
        if std::io::stderr().is_terminal() {
            eprintln!("Ctrl-C stops the agent");
        }
    }
    let shared = Mutex::new(ctx);
    let agent = Agent { keys: &keys, token: &shared, log };
    std::thread::scope(|s| {
        let mut open: Vec<(std::thread::ScopedJoinHandle<'_, ()>, UnixStream)> = Vec::new();
        while !pkms_lib::interrupt::requested() {
            match listener.accept() {
                Ok((stream, _)) => {
                    open.retain(|(h, _)| !h.is_finished());
                    let Ok(clone) = stream.try_clone() else { continue };
                    let agent = &agent;
                    open.push((s.spawn(move || agent.serve(stream)), clone));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(pkms_lib::interrupt::POLL)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("ssh-agent: accept failed: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        // Ends the connections still open so their threads return.
        for (_, stream) in &open {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    drop(socket);
    Ok(())
}

struct Agent<'a, 'c> {
    keys: &'a [TokenKey],
    token: &'a Mutex<&'c mut Context>,
    log: bool,
}

impl Agent<'_, '_> {
    /// Answers one connection's requests, in order, until it closes.
    fn serve(&self, mut stream: UnixStream) {
        let _ = stream.set_nonblocking(false);
        loop {
            let body = match agent::read_message(&mut stream) {
                Ok(Some(b)) => b,
                Ok(None) => return,
                Err(e) => {
                    if self.log && e.kind() != std::io::ErrorKind::UnexpectedEof {
                        eprintln!("ssh-agent: dropped a connection: {e}");
                    }
                    return;
                }
            };
            let answer = self.answer(&body);
            if stream.write_all(&answer).is_err() {
                return;
            }
        }
    }

    fn answer(&self, body: &[u8]) -> Vec<u8> {
        match agent::parse_request(body) {
            Ok(Request::Identities) => agent::identities_answer(
                &self.keys.iter().map(|k| (k.public.ssh_blob(), k.arn.clone())).collect::<Vec<_>>(),
            ),
            Ok(Request::Sign { key_blob, data, flags: _ }) => {
                let Some(key) = self.keys.iter().find(|k| k.public.ssh_blob() == key_blob) else {
                    if self.log {
                        eprintln!("ssh-agent: refused to sign with a key it does not serve");
                    }
                    return agent::failure();
                };
                match self.sign(key, &data) {
                    Ok(sig) => {
                        if self.log {
                            eprintln!(
                                "ssh-agent: signed {} bytes with {} version {}",
                                data.len(),
                                key.arn,
                                key.version
                            );
                        }
                        agent::sign_response(&sig)
                    }
                    Err(e) => {
                        eprintln!("ssh-agent: signing with {} failed: {e:#}", key.arn);
                        agent::failure()
                    }
                }
            }
            Ok(Request::Other(kind)) => {
                if self.log {
                    eprintln!("ssh-agent: refused request type {kind} (this agent only lists and signs)");
                }
                agent::failure()
            }
            Err(e) => {
                if self.log {
                    eprintln!("ssh-agent: {e}");
                }
                agent::failure()
            }
        }
    }

    /// Signs on the token; a failed link or an ended session is opened again once.
    fn sign(&self, key: &TokenKey, data: &[u8]) -> anyhow::Result<pkms_lib::sigformat::ssh_key::Signature> {
        let mut ctx = self.token.lock().unwrap_or_else(|p| p.into_inner());
        let raw = match token_sign(ctx.client()?, key, data) {
            Err(e) if reconnect(&e) => {
                ctx.disconnect();
                token_sign(ctx.client()?, key, data)?
            }
            Err(e) => {
                if let Some(Error::Token { code: ErrorCode::UserPresenceRequired, .. }) =
                    e.downcast_ref::<Error>()
                {
                    eprintln!("ssh-agent: {} needs a button press: touch the token when it blinks", key.arn);
                }
                return Err(e);
            }
            Ok(raw) => raw,
        };
        drop(ctx);
        let sig = key.public.ssh_signature(&raw)?;
        if !key.public.verify_ssh(data, &sig) {
            anyhow::bail!("the token's signature does not verify with version {}", key.version);
        }
        Ok(sig)
    }
}

/// Whether a failed call is worth a new connection and session.
fn reconnect(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<Error>() {
        Some(Error::Link(_)) => true,
        Some(Error::Token { code: ErrorCode::SessionEnded, .. }) => true,
        Some(_) | None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_in_use_or_not_sockets_are_refused_and_stale_ones_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let e = bind(Some(file.clone())).err().unwrap().to_string();
        assert!(e.contains("not a socket"), "{e}");
        let path = dir.path().join("a.sock");
        let (listener, socket) = bind(Some(path.clone())).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let e = bind(Some(path.clone())).err().unwrap().to_string();
        assert!(e.contains("in use"), "{e}");
        // A socket left behind by an agent that was killed.
        drop(listener);
        std::mem::forget(socket);
        assert!(path.exists());
        let (_l, socket) = bind(Some(path.clone())).unwrap();
        drop(socket);
        assert!(!path.exists(), "the socket is removed on the way out");
        let (_l, fresh) = bind(None).unwrap();
        let made = fresh.path.clone();
        assert!(made.exists());
        drop(fresh);
        assert!(!made.exists() && !made.parent().unwrap().exists());
    }

    #[test]
    fn only_link_failures_and_ended_sessions_reconnect() {
        let link: anyhow::Error = Error::Link(pkms_lib::error::LinkError::Closed).into();
        assert!(reconnect(&link));
        let ended: anyhow::Error =
            Error::Token { code: ErrorCode::SessionEnded, message: String::new() }.into();
        assert!(reconnect(&ended));
        let denied: anyhow::Error =
            Error::Token { code: ErrorCode::AccessDenied, message: String::new() }.into();
        assert!(!reconnect(&denied));
        assert!(!reconnect(&anyhow::anyhow!("other")));
    }
}
