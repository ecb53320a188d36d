//! Device keys pinned on first use, as OpenSSH pins host keys in `known_hosts`: the file
//! `known_device_keys` in PKMS_HOME holds, per token name ([`crate::connect::TokenName`]), the
//! device key the host first saw there. A token that later presents another key is refused
//! ([`crate::Error::DeviceKeyChanged`]) until the pin is replaced on purpose (`pkms
//! pin-device-key`, or a factory reset made through this host).
//!
//! File format: one line per token, `NAME SHA256:FINGERPRINT BASE64-DER-SPKI`; lines starting
//! with `#` and blank lines are ignored. Written whole to a temporary file and renamed, mode 0600.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::error::{DeviceKeyChanged, Error, LinkError, Result};
use crate::session::DeviceKey;

/// The file name under PKMS_HOME.
pub const FILE_NAME: &str = "known_device_keys";

/// What [`PinStore::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinned {
    /// The key was already pinned for this token.
    Known,
    /// First use: the key is now pinned.
    New,
}

/// The pinned device keys of one PKMS_HOME.
#[derive(Debug, Clone)]
pub struct PinStore {
    path: PathBuf,
}

impl PinStore {
    /// The store in `home` (the file need not exist yet).
    pub fn in_home(home: &Path) -> PinStore {
        PinStore { path: home.join(FILE_NAME) }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<BTreeMap<String, DeviceKey>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(open_error(&self.path, &e.to_string())),
        };
        let mut out = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || open_error(&self.path, &format!("line {} is not `NAME SHA256:… BASE64`", i + 1));
            let mut parts = line.split_whitespace();
            let (Some(name), Some(_fingerprint), Some(der), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let der = base64::engine::general_purpose::STANDARD.decode(der).map_err(|_| bad())?;
            out.insert(name.to_owned(), DeviceKey::from_spki_der(&der).map_err(|_| bad())?);
        }
        Ok(out)
    }

    fn write(&self, pins: &BTreeMap<String, DeviceKey>) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut text =
            String::from("# Pocket KMS device keys pinned on first use (see `pkms pin-device-key`)\n");
        for (name, key) in pins {
            let der = base64::engine::general_purpose::STANDARD.encode(key.spki_der());
            text.push_str(&format!("{name} {} {der}\n", key.fingerprint()));
        }
        let fail = |e: std::io::Error| open_error(&self.path, &e.to_string());
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
        tmp.write_all(text.as_bytes()).map_err(fail)?;
        tmp.as_file().sync_all().map_err(fail)?;
        tmp.persist(&self.path).map_err(|e| fail(e.error))?;
        Ok(())
    }

    /// The key pinned for `name`, if any.
    pub fn get(&self, name: &str) -> Result<Option<DeviceKey>> {
        Ok(self.read()?.remove(name))
    }

    /// Checks `presented` against the key pinned for `name`: pins it on first use; refuses a
    /// different one with [`Error::DeviceKeyChanged`].
    pub fn check(&self, name: &str, presented: &DeviceKey) -> Result<Pinned> {
        let mut pins = self.read()?;
        match pins.get(name) {
            Some(pinned) if pinned == presented => Ok(Pinned::Known),
            Some(pinned) => Err(Error::DeviceKeyChanged(Box::new(DeviceKeyChanged {
                token: name.to_owned(),
                pinned: pinned.fingerprint(),
                presented: presented.fingerprint(),
                file: self.path.clone(),
            }))),
            None => {
                pins.insert(name.to_owned(), presented.clone());
                self.write(&pins)?;
                Ok(Pinned::New)
            }
        }
    }

    /// Pins `key` for `name`, replacing any earlier pin.
    pub fn replace(&self, name: &str, key: &DeviceKey) -> Result<()> {
        let mut pins = self.read()?;
        pins.insert(name.to_owned(), key.clone());
        self.write(&pins)
    }

    /// Forgets the pin of `name` (the next connection pins what it sees).
    pub fn forget(&self, name: &str) -> Result<()> {
        let mut pins = self.read()?;
        if pins.remove(name).is_some() {
            self.write(&pins)?;
        }
        Ok(())
    }
}

fn open_error(path: &Path, why: &str) -> Error {
    Error::Link(LinkError::Open(format!("{}: {why}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> DeviceKey {
        let sk = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
        let der = p256::pkcs8::EncodePublicKey::to_public_key_der(&sk.public_key()).unwrap();
        DeviceKey::from_spki_der(der.as_bytes()).unwrap()
    }

    #[test]
    fn a_key_is_pinned_on_first_use_and_another_one_is_refused_until_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = PinStore::in_home(dir.path());
        assert_eq!(store.check("qemu", &key(1)).unwrap(), Pinned::New);
        assert_eq!(store.check("qemu", &key(1)).unwrap(), Pinned::Known);
        assert_eq!(store.check("usb:A1B2", &key(2)).unwrap(), Pinned::New, "each token has its own pin");
        match store.check("qemu", &key(2)) {
            Err(Error::DeviceKeyChanged(changed)) => {
                assert_eq!(changed.token, "qemu");
                assert_eq!(changed.pinned, key(1).fingerprint());
                assert_eq!(changed.presented, key(2).fingerprint());
                assert_eq!(changed.file, store.path());
            }
            other => panic!("{other:?}"),
        }
        let message = store.check("qemu", &key(2)).unwrap_err().to_string();
        assert!(message.contains("pkms pin-device-key"), "{message}");
        store.replace("qemu", &key(2)).unwrap();
        assert_eq!(store.check("qemu", &key(2)).unwrap(), Pinned::Known);
        store.forget("qemu").unwrap();
        assert_eq!(store.get("qemu").unwrap(), None);
        assert_eq!(store.get("usb:A1B2").unwrap(), Some(key(2)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = PinStore::in_home(dir.path());
        std::fs::write(store.path(), "qemu SHA256:x not-base64!\n").unwrap();
        assert!(store.check("qemu", &key(1)).is_err(), "a damaged pin file must not re-pin silently");
    }

    #[test]
    fn fingerprints_are_sha256_of_the_spki_in_unpadded_base64() {
        let k = key(3);
        let fp = k.fingerprint();
        assert!(fp.starts_with("SHA256:") && fp.len() == 7 + 43, "{fp}");
        assert_ne!(fp, key(4).fingerprint());
        assert!(k.to_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
    }
}
