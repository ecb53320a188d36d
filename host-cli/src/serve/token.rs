//! The token behind the endpoint: one link (one [`Client`]) carrying one encrypted session per
//! principal, each logged in as that principal, so the token's policies, grants and audit see
//! who asked. Calls are queued on one lock and run one at a time; a link that fails is dropped
//! and the next call connects again (the QEMU token is started again if it stopped).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use pkms_lib::client::Client;
use pkms_lib::error::{Error, Result};

use super::errors::ApiError;
use pkms_lib::session::{DeviceKey, Session};
use pkms_protocol::ErrorCode;
use zeroize::Zeroizing;

/// Opens a link to the token and returns it with the token's device key, checked against the
/// key pinned in PKMS_HOME (no session opened yet).
pub type Connector = Box<dyn Fn() -> Result<(Client, DeviceKey)> + Send + Sync>;

/// The principals the server logs in as, with their PINs (empty on an open token).
pub type Logins = HashMap<String, Zeroizing<Vec<u8>>>;

/// The token, shared by every request handler.
pub struct Token {
    connector: Connector,
    logins: Logins,
    link: Mutex<Option<Link>>,
}

struct Link {
    client: Client,
    device_key: DeviceKey,
    /// Sessions not in use, by principal (`None`: the one unauthenticated session of an open
    /// token).
    sessions: HashMap<Option<String>, Session>,
}

impl Drop for Link {
    /// Closes every session this link holds.
    fn drop(&mut self) {
        for (_, session) in self.sessions.drain() {
            self.client.put_session(session);
            let _ = self.client.close_session();
        }
    }
}

impl Token {
    /// A token reached through `connector`, logged in as `logins` require.
    pub fn new(connector: Connector, logins: Logins) -> Token {
        Token { connector, logins, link: Mutex::new(None) }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Link>> {
        self.link.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the token in `principal`'s session (opened and logged in on first use),
    /// after every call queued before it. A link error drops the link (the next call
    /// reconnects); a session the token ended is forgotten (the next call opens another).
    pub fn run<R>(
        &self,
        principal: Option<&str>,
        f: impl FnOnce(&mut Client) -> std::result::Result<R, ApiError>,
    ) -> std::result::Result<R, ApiError> {
        let mut guard = self.lock();
        if guard.is_none() {
            let (client, device_key) = (self.connector)().map_err(ApiError::from)?;
            *guard = Some(Link { client, device_key, sessions: HashMap::new() });
        }
        let Some(link) = guard.as_mut() else {
            return Err(ApiError::new("KMSInternalException", "no link to the token"));
        };
        let key = principal.map(str::to_owned);
        let result = match link.sessions.remove(&key) {
            Some(session) => {
                link.client.put_session(session);
                f(&mut link.client)
            }
            None => self.open(link, principal).map_err(ApiError::from).and_then(|()| f(&mut link.client)),
        };
        if let Some(session) = link.client.take_session() {
            link.sessions.insert(key, session);
        }
        if result.as_ref().is_err_and(|e| e.link_failed) {
            *guard = None;
        } else if result.as_ref().is_err_and(|e| e.session_ended) {
            if let Some(link) = guard.as_mut() {
                link.sessions.remove(&principal.map(str::to_owned));
            }
        }
        result
    }

    /// Opens a session on `link` and logs it in as `principal`.
    fn open(&self, link: &mut Link, principal: Option<&str>) -> Result<()> {
        link.client.open_session(&link.device_key)?;
        if let Some(p) = principal {
            let pin = self.logins.get(p).ok_or_else(|| Error::Token {
                code: ErrorCode::AuthenticationFailed,
                message: format!("no PIN for principal {p}"),
            })?;
            if let Err(e) = link.client.authenticate(p, pin) {
                let _ = link.client.close_session();
                return Err(e);
            }
        }
        Ok(())
    }
}
