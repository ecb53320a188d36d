//! Finding Pocket KMS USB tokens: serial ports whose USB device has the token's vendor and product
//! IDs ([`USB_VID`]:[`USB_PID`]) and, when the system reports one, the product string
//! [`USB_PRODUCT`].
//!
//! On Linux the ports are read straight from sysfs (`/sys/class/tty/*/device/..`), which needs no
//! C library (no libudev). Elsewhere the `serialport` crate's port enumeration supplies the USB
//! information.
//!
//! The environment variable `PKMS_USB_SYSFS` points the Linux scan at another sysfs root (tests
//! use a fake tree); device paths are then reported under that root's `dev/` directory.

use std::fs;
use std::path::{Path, PathBuf};

/// pid.codes' vendor ID, as set by the firmware (firmware/nrf52840/src/usb.rs).
pub const USB_VID: u16 = 0x1209;
/// pid.codes' test product ID 0x0001, as set by the firmware. It is shared with anyone testing
/// with pid.codes, hence the product-string check.
pub const USB_PID: u16 = 0x0001;
/// The firmware's iProduct string.
pub const USB_PRODUCT: &str = "Pocket KMS";

/// A token found on the USB bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbToken {
    /// The serial port to open, e.g. `/dev/ttyACM0`.
    pub port: PathBuf,
    /// The USB serial number (the chip's factory device ID), if reported.
    pub serial: Option<String>,
    /// The USB product string, if reported.
    pub product: Option<String>,
    /// The USB manufacturer string, if reported.
    pub manufacturer: Option<String>,
    /// USB vendor ID.
    pub vendor_id: u16,
    /// USB product ID.
    pub product_id: u16,
}

/// Which token to use when none is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultToken {
    /// No token is plugged in.
    None,
    /// Exactly one: use it.
    One(PathBuf),
    /// Several: the user must choose one with `--device`.
    Several(Vec<PathBuf>),
}

/// Every Pocket KMS token plugged in, sorted by port path. Empty when there is none or the ports
/// cannot be enumerated.
pub fn list_tokens() -> Vec<UsbToken> {
    let mut tokens = match std::env::var_os("PKMS_USB_SYSFS") {
        Some(root) => {
            let root = PathBuf::from(root);
            scan_sysfs(&root.join("sys"), &root.join("dev"))
        }
        None => platform_scan(),
    };
    tokens.sort_by(|a, b| a.port.cmp(&b.port));
    tokens
}

/// The plugged-in token to use by default: `Some` only when exactly one is plugged in.
pub fn default_usb_device() -> Option<PathBuf> {
    match choose_default(&list_tokens()) {
        DefaultToken::One(port) => Some(port),
        DefaultToken::None | DefaultToken::Several(_) => None,
    }
}

/// Picks the default among `tokens` (see [`DefaultToken`]).
pub fn choose_default(tokens: &[UsbToken]) -> DefaultToken {
    match tokens {
        [] => DefaultToken::None,
        [one] => DefaultToken::One(one.port.clone()),
        many => DefaultToken::Several(many.iter().map(|t| t.port.clone()).collect()),
    }
}

/// Whether a USB device with these IDs and product string is a Pocket KMS token.
pub fn is_token(vendor_id: u16, product_id: u16, product: Option<&str>) -> bool {
    vendor_id == USB_VID && product_id == USB_PID && product.is_none_or(|p| p.trim() == USB_PRODUCT)
}

#[cfg(target_os = "linux")]
fn platform_scan() -> Vec<UsbToken> {
    scan_sysfs(Path::new("/sys"), Path::new("/dev"))
}

#[cfg(not(target_os = "linux"))]
fn platform_scan() -> Vec<UsbToken> {
    let Ok(ports) = serialport::available_ports() else { return Vec::new() };
    ports
        .into_iter()
        .filter_map(|p| match p.port_type {
            serialport::SerialPortType::UsbPort(usb)
                if is_token(usb.vid, usb.pid, usb.product.as_deref()) =>
            {
                Some(UsbToken {
                    port: PathBuf::from(p.port_name),
                    serial: usb.serial_number,
                    product: usb.product,
                    manufacturer: usb.manufacturer,
                    vendor_id: usb.vid,
                    product_id: usb.pid,
                })
            }
            _ => None,
        })
        .collect()
}

/// Scans `<sys>/class/tty/*`: for each tty whose `device` link leads to a USB interface, reads
/// the USB device's `idVendor`, `idProduct`, `serial`, `product` and `manufacturer` one level up.
/// Ports are reported as `<dev>/<tty name>`.
pub fn scan_sysfs(sys: &Path, dev: &Path) -> Vec<UsbToken> {
    let Ok(entries) = fs::read_dir(sys.join("class/tty")) else { return Vec::new() };
    let mut tokens = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        // Most entries are virtual terminals and ptys, which have no device: one readlink of the
        // class entry tells, instead of resolving every component of their device path (this
        // scan runs before every call to the default token).
        if fs::read_link(entry.path()).is_ok_and(|t| t.components().any(|c| c.as_os_str() == "virtual")) {
            continue;
        }
        // The tty's device is the USB interface (e.g. 1-1:1.0); its parent is the USB device.
        let Ok(interface) = fs::canonicalize(entry.path().join("device")) else { continue };
        let Some(usb_device) = interface.parent() else { continue };
        let (Some(vid), Some(pid)) =
            (read_hex_u16(&usb_device.join("idVendor")), read_hex_u16(&usb_device.join("idProduct")))
        else {
            continue;
        };
        let product = read_string(&usb_device.join("product"));
        if !is_token(vid, pid, product.as_deref()) {
            continue;
        }
        tokens.push(UsbToken {
            port: dev.join(name),
            serial: read_string(&usb_device.join("serial")),
            product,
            manufacturer: read_string(&usb_device.join("manufacturer")),
            vendor_id: vid,
            product_id: pid,
        });
    }
    tokens
}

/// A sysfs attribute as text without its trailing newline; `None` if absent, unreadable, empty
/// or oversized.
fn read_string(path: &Path) -> Option<String> {
    let bytes = fs::read(path).ok()?;
    if bytes.len() > 256 {
        return None;
    }
    let text = String::from_utf8_lossy(&bytes).trim_end_matches(['\n', '\r', '\0']).to_owned();
    (!text.is_empty()).then_some(text)
}

/// A sysfs attribute holding four hex digits, e.g. `1209`.
fn read_hex_u16(path: &Path) -> Option<u16> {
    let text = read_string(path)?;
    u16::from_str_radix(text.trim(), 16).ok()
}

#[cfg(test)]
#[path = "../tests/support/fake_sysfs.rs"]
mod fake_sysfs;

#[cfg(test)]
mod tests {
    use super::fake_sysfs::add_tty;
    use super::*;

    fn add_plain_tty(root: &Path, name: &str) {
        // A tty with no device link at all (like tty0) and one on a platform device.
        fs::create_dir_all(root.join("sys/class/tty").join(name)).unwrap();
    }

    const TOKEN: &[(&str, &str)] = &[
        ("idVendor", "1209"),
        ("idProduct", "0001"),
        ("product", "Pocket KMS"),
        ("manufacturer", "Pocket KMS"),
        ("serial", "A1B2C3D4E5F60718"),
    ];

    #[test]
    fn finds_tokens_and_ignores_other_serial_devices() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        add_tty(root, "ttyACM1", "1-2", TOKEN);
        add_tty(
            root,
            "ttyACM0",
            "1-1",
            &[("idVendor", "2341"), ("idProduct", "0043"), ("product", "Arduino Uno")],
        );
        // Someone else's device on the pid.codes test PID.
        add_tty(
            root,
            "ttyACM2",
            "1-3",
            &[("idVendor", "1209"), ("idProduct", "0001"), ("product", "Test Gadget")],
        );
        add_tty(root, "ttyUSB0", "1-4", &[("idVendor", "0403")]);
        add_plain_tty(root, "tty0");

        let found = scan_sysfs(&root.join("sys"), &root.join("dev"));
        assert_eq!(found.len(), 1, "{found:?}");
        let t = &found[0];
        assert_eq!(t.port, root.join("dev/ttyACM1"));
        assert_eq!(t.serial.as_deref(), Some("A1B2C3D4E5F60718"));
        assert_eq!(t.product.as_deref(), Some("Pocket KMS"));
        assert_eq!(t.manufacturer.as_deref(), Some("Pocket KMS"));
        assert_eq!((t.vendor_id, t.product_id), (0x1209, 0x0001));
    }

    #[test]
    fn no_sysfs_or_no_ttys_means_no_tokens() {
        let dir = tempfile::tempdir().unwrap();
        assert!(scan_sysfs(&dir.path().join("nowhere"), &dir.path().join("dev")).is_empty());
        add_plain_tty(dir.path(), "ttyS0");
        assert!(scan_sysfs(&dir.path().join("sys"), &dir.path().join("dev")).is_empty());
    }

    #[test]
    fn malformed_attributes_are_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        add_tty(root, "ttyACM0", "1-1", &[("idVendor", "zz09"), ("idProduct", "0001")]);
        add_tty(root, "ttyACM1", "1-2", &[("idVendor", "1209")]); // no idProduct
        let big = "x".repeat(1000);
        add_tty(root, "ttyACM2", "1-3", &[("idVendor", "1209"), ("idProduct", "0001"), ("serial", &big)]);
        let found = scan_sysfs(&root.join("sys"), &root.join("dev"));
        assert_eq!(found.len(), 1, "only the well-formed token: {found:?}");
        assert_eq!(found[0].port, root.join("dev/ttyACM2"));
        assert_eq!(found[0].serial, None, "an oversized attribute is dropped");
        assert_eq!(found[0].product, None);
    }

    #[test]
    fn product_string_decides_on_the_shared_test_pid() {
        assert!(is_token(0x1209, 0x0001, Some("Pocket KMS")));
        assert!(is_token(0x1209, 0x0001, None), "a system that reports no product string");
        assert!(!is_token(0x1209, 0x0001, Some("Test Gadget")));
        assert!(!is_token(0x1209, 0x0002, Some("Pocket KMS")));
        assert!(!is_token(0x2341, 0x0001, Some("Pocket KMS")));
    }

    #[test]
    fn the_default_is_the_only_token_never_a_guess_among_several() {
        let token = |port: &str| UsbToken {
            port: PathBuf::from(port),
            serial: None,
            product: None,
            manufacturer: None,
            vendor_id: USB_VID,
            product_id: USB_PID,
        };
        assert_eq!(choose_default(&[]), DefaultToken::None);
        assert_eq!(choose_default(&[token("/dev/ttyACM0")]), DefaultToken::One("/dev/ttyACM0".into()));
        assert_eq!(
            choose_default(&[token("/dev/ttyACM0"), token("/dev/ttyACM3")]),
            DefaultToken::Several(vec!["/dev/ttyACM0".into(), "/dev/ttyACM3".into()])
        );
    }
}
