//! `pkms devices`: the Pocket KMS USB tokens plugged into this computer.

use serde::Serialize;

use crate::cli::Context;
use pkms_lib::usb::{self, choose_default, DefaultToken, UsbToken};

/// Device discovery.
#[derive(Debug, clap::Subcommand)]
pub enum Commands {
    /// List the Pocket KMS USB tokens plugged in (USB 1209:0001, product "Pocket KMS"). Exits 0
    /// with an empty list when there is none. The one marked Default is used when no --device is
    /// given.
    #[command(
        after_help = "Examples:\n  pkms devices\n  pkms devices --output text\n  pkms devices --query 'Devices[].Port' --output text"
    )]
    Devices {},
}

/// Runs a device command. Needs no connection to a token.
pub fn run(cmd: Commands, ctx: &mut Context) -> anyhow::Result<()> {
    match cmd {
        Commands::Devices {} => ctx.emit(&DevicesOutput::new(&usb::list_tokens())),
    }
}

/// What `pkms devices` reports: `{"Devices": [{"Port", "SerialNumber", "Product",
/// "Manufacturer", "VendorId", "ProductId", "Default"}, …]}`; IDs as four hex digits, as `lsusb`
/// prints them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DevicesOutput {
    devices: Vec<Device>,
}

/// One token of [`DevicesOutput`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Device {
    port: String,
    serial_number: Option<String>,
    product: Option<String>,
    manufacturer: Option<String>,
    vendor_id: String,
    product_id: String,
    /// Used when no --device is given.
    default: bool,
}

impl DevicesOutput {
    /// The report of `tokens`.
    pub fn new(tokens: &[UsbToken]) -> Self {
        let default = match choose_default(tokens) {
            DefaultToken::One(port) => Some(port),
            DefaultToken::None | DefaultToken::Several(_) => None,
        };
        let devices = tokens
            .iter()
            .map(|t| Device {
                port: t.port.display().to_string(),
                serial_number: t.serial.clone(),
                product: t.product.clone(),
                manufacturer: t.manufacturer.clone(),
                vendor_id: format!("{:04x}", t.vendor_id),
                product_id: format!("{:04x}", t.product_id),
                default: default.as_ref() == Some(&t.port),
            })
            .collect();
        DevicesOutput { devices }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::path::PathBuf;

    fn devices_json(tokens: &[UsbToken]) -> Value {
        serde_json::to_value(DevicesOutput::new(tokens)).unwrap()
    }

    fn token(port: &str, serial: &str) -> UsbToken {
        UsbToken {
            port: PathBuf::from(port),
            serial: Some(serial.into()),
            product: Some("Pocket KMS".into()),
            manufacturer: Some("Pocket KMS".into()),
            vendor_id: usb::USB_VID,
            product_id: usb::USB_PID,
        }
    }

    #[test]
    fn no_tokens_is_an_empty_list() {
        assert_eq!(devices_json(&[]), json!({ "Devices": [] }));
    }

    #[test]
    fn one_token_is_listed_as_the_default() {
        let v = devices_json(&[token("/dev/ttyACM0", "ABCD")]);
        let d = &v["Devices"][0];
        assert_eq!(d["Port"], "/dev/ttyACM0");
        assert_eq!(d["SerialNumber"], "ABCD");
        assert_eq!(d["VendorId"], "1209");
        assert_eq!(d["ProductId"], "0001");
        assert_eq!(d["Default"], true);
    }

    #[test]
    fn with_several_tokens_none_is_the_default() {
        let v = devices_json(&[token("/dev/ttyACM0", "A"), token("/dev/ttyACM1", "B")]);
        assert_eq!(v["Devices"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["Devices"][0]["Default"], false);
        assert_eq!(v["Devices"][1]["Default"], false);
    }
}
