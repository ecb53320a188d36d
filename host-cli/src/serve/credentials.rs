//! The credentials file of `pkms serve --credentials FILE`: access keys, their secrets and the
//! token principal each one acts as, with where that principal's PIN comes from.
//!
//! ```json
//! {"Credentials": [
//!   {"AccessKeyId": "AKIDALICE", "SecretAccessKey": "…", "Principal": "alice", "PinEnv": "ALICE_PIN"},
//!   {"AccessKeyId": "AKIDADMIN", "SecretAccessKey": "…", "Principal": "admin", "PinFile": "/run/secrets/admin-pin"}
//! ]}
//! ```
//!
//! A PIN comes from the environment variable `PinEnv` names, else the file `PinFile` names
//! (its first line), else a prompt on the terminal at start; never from the command line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

/// One access key.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Entry {
    /// The access key id clients sign with.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// The token principal requests signed with it act as.
    pub principal: String,
    /// An environment variable holding the principal's PIN.
    #[serde(default)]
    pub pin_env: Option<String>,
    /// A file holding the principal's PIN.
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("access_key_id", &self.access_key_id)
            .field("principal", &self.principal)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct File {
    credentials: Vec<Entry>,
}

/// The access keys, by id.
#[derive(Debug, Default)]
pub struct Credentials {
    by_id: HashMap<String, Entry>,
}

impl Credentials {
    /// Reads and checks a credentials file.
    pub fn load(path: &Path) -> anyhow::Result<Credentials> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("--credentials {}: {e}", path.display()))?,
        );
        Self::parse(&text).map_err(|e| anyhow::anyhow!("--credentials {}: {e}", path.display()))
    }

    /// Parses the JSON text of a credentials file.
    pub fn parse(text: &str) -> anyhow::Result<Credentials> {
        let file: File = serde_json::from_str(text)?;
        let mut by_id = HashMap::new();
        for e in file.credentials {
            if e.access_key_id.is_empty() || e.secret_access_key.is_empty() || e.principal.is_empty() {
                anyhow::bail!("every entry needs a non-empty AccessKeyId, SecretAccessKey and Principal");
            }
            if e.access_key_id.contains('/') {
                anyhow::bail!("an AccessKeyId cannot contain '/'");
            }
            let id = e.access_key_id.clone();
            if by_id.insert(id.clone(), e).is_some() {
                anyhow::bail!("access key {id} is listed twice");
            }
        }
        if by_id.is_empty() {
            anyhow::bail!("no credentials listed");
        }
        Ok(Credentials { by_id })
    }

    /// The entry of an access key id.
    pub fn get(&self, access_key_id: &str) -> Option<&Entry> {
        self.by_id.get(access_key_id)
    }

    /// Every entry.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_id.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credentials_file_parses_and_bad_ones_are_refused() {
        let c = Credentials::parse(
            r#"{"Credentials":[{"AccessKeyId":"AK1","SecretAccessKey":"s1","Principal":"alice","PinEnv":"P"}]}"#,
        )
        .unwrap();
        assert_eq!(c.get("AK1").unwrap().principal, "alice");
        assert!(c.get("AK2").is_none());
        for bad in [
            r#"{"Credentials":[]}"#,
            r#"{"Credentials":[{"AccessKeyId":"AK1","SecretAccessKey":"","Principal":"a"}]}"#,
            r#"{"Credentials":[{"AccessKeyId":"AK1","SecretAccessKey":"s","Principal":"a","Pin":"1234"}]}"#,
            r#"{"Credentials":[{"AccessKeyId":"A","SecretAccessKey":"s","Principal":"a"},{"AccessKeyId":"A","SecretAccessKey":"t","Principal":"b"}]}"#,
        ] {
            assert!(Credentials::parse(bad).is_err(), "{bad}");
        }
    }
}
