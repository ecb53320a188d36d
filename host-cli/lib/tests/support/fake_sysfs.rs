//! Fake sysfs trees laid out as the Linux cdc_acm driver lays out a real one, for the USB token
//! discovery tests: included with `#[path]` by `src/usb.rs`'s unit tests and the CLI's
//! `devices_cli` tests.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

/// Adds, under `root`, a USB device `bus` with the given attributes whose first interface is the
/// tty `name`.
pub fn add_tty(root: &Path, name: &str, bus: &str, attrs: &[(&str, &str)]) {
    let usb_device = root.join("sys/devices/pci0000:00/0000:00:14.0/usb1").join(bus);
    let interface = usb_device.join(format!("{bus}:1.0"));
    fs::create_dir_all(interface.join("tty").join(name)).unwrap();
    for (k, v) in attrs {
        fs::write(usb_device.join(k), format!("{v}\n")).unwrap();
    }
    let class = root.join("sys/class/tty").join(name);
    fs::create_dir_all(&class).unwrap();
    symlink(&interface, class.join("device")).unwrap();
}
