//! `pkms pin-device-key`: pins the device key a token presents now, replacing the pin kept in
//! PKMS_HOME (after a factory reset made elsewhere, or a replaced token).

use serde::Serialize;

use super::{usage, Context};
use pkms_lib::pins::PinStore;

/// Device key pinning.
#[derive(Debug, clap::Subcommand)]
pub enum Commands {
    /// Pin the device key the token presents now, replacing the one pinned for it (after the
    /// token was factory-reset elsewhere or replaced). Check the fingerprint against `pkms info`
    /// on a host you trust first, or give it with --fingerprint.
    #[command(
        after_help = "Examples:\n  pkms pin-device-key\n  pkms pin-device-key --fingerprint SHA256:3q2+7w...\n  pkms --device /dev/ttyACM0 pin-device-key"
    )]
    PinDeviceKey {
        /// Pin only if the token presents exactly this fingerprint (`SHA256:…`).
        #[arg(long)]
        fingerprint: Option<String>,
    },
}

/// What `pkms pin-device-key` prints.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PinOutput {
    token: String,
    device_key_fingerprint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_fingerprint: Option<String>,
}

/// Runs a pinning command.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::PinDeviceKey { fingerprint } => {
            let Some(name) = ctx.pin_name() else {
                return Err(usage("an in-memory in-process token keeps no pin"));
            };
            let key = ctx.connect_unsecured()?.device_key()?;
            if let Some(expected) = fingerprint {
                if expected.trim() != key.fingerprint() {
                    return Err(usage(format!(
                        "the token presents {}, not {}: nothing pinned",
                        key.fingerprint(),
                        expected.trim()
                    )));
                }
            }
            let store = PinStore::in_home(ctx.home());
            let previous = store.get(&name)?.map(|k| k.fingerprint());
            store.replace(&name, &key)?;
            ctx.emit(&PinOutput {
                token: name,
                device_key_fingerprint: key.fingerprint(),
                previous_fingerprint: previous,
            })
        }
    }
}
