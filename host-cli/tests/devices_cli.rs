//! `pkms devices` end to end: the `pkms` binary scanning a fake sysfs tree (`PKMS_USB_SYSFS`) laid
//! out as the Linux cdc_acm driver lays out a real one.
#![cfg(target_os = "linux")]

#[path = "../lib/tests/support/fake_sysfs.rs"]
mod fake_sysfs;

use std::path::Path;
use std::process::{Command, Output};

use fake_sysfs::add_tty;
use serde_json::Value;

fn pkms(sysfs: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkms"))
        .args(args)
        .env("PKMS_USB_SYSFS", sysfs)
        .env("PKMS_HOME", sysfs.join("home"))
        .env_remove("PKMS_DEVICE")
        .output()
        .unwrap()
}

fn token_attrs(serial: &str) -> Vec<(&'static str, String)> {
    vec![
        ("idVendor", "1209".into()),
        ("idProduct", "0001".into()),
        ("product", "Pocket KMS".into()),
        ("manufacturer", "Pocket KMS".into()),
        ("serial", serial.into()),
    ]
}

fn add_token(root: &Path, name: &str, bus: &str, serial: &str) {
    let attrs = token_attrs(serial);
    let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    add_tty(root, name, bus, &attrs);
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "pkms failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn no_token_plugged_in_is_an_empty_list_and_success() {
    let dir = tempfile::tempdir().unwrap();
    // Only a non-token serial device.
    add_tty(dir.path(), "ttyACM0", "1-1", &[("idVendor", "2341"), ("idProduct", "0043")]);
    let v = json(&pkms(dir.path(), &["devices"]));
    assert_eq!(v, serde_json::json!({ "Devices": [] }));
    let text = pkms(dir.path(), &["devices", "--output", "text"]);
    assert!(text.status.success());
    assert!(text.stdout.is_empty(), "no lines: {:?}", String::from_utf8_lossy(&text.stdout));
}

#[test]
fn one_token_is_listed_with_its_port_and_serial_and_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    add_token(dir.path(), "ttyACM3", "1-4", "0123456789ABCDEF");
    add_tty(dir.path(), "ttyUSB0", "1-2", &[("idVendor", "0403"), ("idProduct", "6001")]);
    let v = json(&pkms(dir.path(), &["devices"]));
    let devices = v["Devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1);
    let d = &devices[0];
    assert_eq!(d["Port"], dir.path().join("dev/ttyACM3").display().to_string());
    assert_eq!(d["SerialNumber"], "0123456789ABCDEF");
    assert_eq!(d["Product"], "Pocket KMS");
    assert_eq!(d["VendorId"], "1209");
    assert_eq!(d["ProductId"], "0001");
    assert_eq!(d["Default"], true);

    let ports = pkms(dir.path(), &["devices", "--query", "Devices[].Port", "--output", "text"]);
    assert!(ports.status.success(), "{}", String::from_utf8_lossy(&ports.stderr));
    assert_eq!(
        String::from_utf8_lossy(&ports.stdout).trim(),
        dir.path().join("dev/ttyACM3").display().to_string()
    );
}

#[test]
fn several_tokens_are_sorted_by_port_and_none_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    add_token(dir.path(), "ttyACM1", "1-2", "BBBB");
    add_token(dir.path(), "ttyACM0", "1-1", "AAAA");
    let v = json(&pkms(dir.path(), &["devices"]));
    let serials: Vec<&str> =
        v["Devices"].as_array().unwrap().iter().map(|d| d["SerialNumber"].as_str().unwrap()).collect();
    assert_eq!(serials, ["AAAA", "BBBB"]);
    assert!(v["Devices"].as_array().unwrap().iter().all(|d| d["Default"] == false));
}

#[test]
fn the_real_system_scan_runs_and_succeeds() {
    // No PKMS_USB_SYSFS: whatever this machine has, the command answers with a list.
    let out = Command::new(env!("CARGO_BIN_EXE_pkms"))
        .arg("devices")
        .env_remove("PKMS_USB_SYSFS")
        .output()
        .unwrap();
    let v = json(&out);
    assert!(v["Devices"].is_array());
}
