//! End to end through the launcher: the QEMU token boots, answers frames over each of its links
//! (the packet link and UART0), turns garbage and oversize frames into error frames and keeps
//! serving, keeps its flash file across a restart, is shared warm between connections,
//! serializes concurrent users, reports its status, and is stopped, killed and restarted on
//! demand. Prints the measured times (never asserts on them).
//!
//! Needs `qemu-system-arm` (the README's test command installs it).

mod frame_support;

use std::path::Path;
use std::time::{Duration, Instant};

use frame_support::FrameReader;
use pkms_lib::launcher::{self, LaunchError, LaunchOptions, Link, PrivateToken};
use pkms_lib::transport::Transport;
use pkms_protocol::framing;
use pkms_protocol::limits::MAX_ENCODED_FRAME;
use pkms_protocol::{
    ErrorCode, KeySpec, Platform, Request, RequestFrame, Response, ResponseFrame, PROTOCOL_VERSION,
};

const TIMEOUT: Duration = Duration::from_secs(20);

fn options() -> LaunchOptions {
    // Short idle timeout: should this test process die, its QEMUs end on their own soon.
    LaunchOptions { idle_timeout: Duration::from_secs(120), ..LaunchOptions::default() }
}

fn send(stream: &mut dyn Transport, id: u32, request: Request<'_>) {
    let mut buf = vec![0u8; MAX_ENCODED_FRAME];
    let n = framing::encode(&RequestFrame { id, now: Some(1_800_000_000), request }, &mut buf).unwrap();
    stream.send(&buf[..n]).unwrap();
}

/// Sends `request` and returns the payload of the answer, checking it carries `id`.
fn call(stream: &mut dyn Transport, reader: &mut FrameReader, id: u32, request: Request<'_>) -> Vec<u8> {
    send(stream, id, request);
    let payload = reader.next_payload(stream, TIMEOUT);
    assert_eq!(framing::decode_response(&payload).unwrap().id, id);
    payload
}

fn decode(payload: &[u8]) -> ResponseFrame<'_> {
    framing::decode_response(payload).expect("a decodable response")
}

fn hello(stream: &mut dyn Transport, reader: &mut FrameReader, id: u32) {
    let p = call(
        stream,
        reader,
        id,
        Request::Hello(pkms_protocol::request::Hello { protocol_version: PROTOCOL_VERSION }),
    );
    let frame = decode(&p);
    match frame.result {
        Ok(Response::Hello(pkms_protocol::reply::Hello { protocol_version, firmware_version })) => {
            assert_eq!(protocol_version, PROTOCOL_VERSION);
            assert_eq!(firmware_version, pkms_firmware::FIRMWARE_VERSION);
        }
        other => panic!("Hello answered {other:?}"),
    }
}

/// GetInfo's key count, after checking the board states plainly what it is.
fn info_key_count(stream: &mut dyn Transport, reader: &mut FrameReader, id: u32) -> u32 {
    let p = call(stream, reader, id, Request::GetInfo(pkms_protocol::request::GetInfo {}));
    let frame = decode(&p);
    match frame.result {
        Ok(Response::Info(pkms_protocol::reply::Info { info })) => {
            assert_eq!(info.platform, Platform::Emulated);
            assert_eq!(info.board, "qemu-mps2-an386");
            assert_eq!(info.protocol_version, PROTOCOL_VERSION);
            assert!(info.entropy_source.contains("emulator only"), "{}", info.entropy_source);
            assert!(info.key_protection.starts_with("none"), "{}", info.key_protection);
            assert_eq!(info.storage_total_bytes, 1024 * 1024, "the store gets the first MiB of the PSRAM");
            info.key_count
        }
        other => panic!("GetInfo answered {other:?}"),
    }
}

fn random(stream: &mut dyn Transport, reader: &mut FrameReader, id: u32, n: u16) -> Vec<u8> {
    let p = call(
        stream,
        reader,
        id,
        Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: n }),
    );
    let frame = decode(&p);
    match frame.result {
        Ok(Response::Random(pkms_protocol::reply::Random { plaintext })) => plaintext.to_vec(),
        other => panic!("GenerateRandom answered {other:?}"),
    }
}

/// The next frame must be an error frame (id 0) with `code`.
fn expect_error_frame(stream: &mut dyn Transport, reader: &mut FrameReader, code: ErrorCode) {
    let p = reader.next_payload(stream, TIMEOUT);
    let frame = decode(&p);
    assert_eq!(frame.id, 0, "errors about undecodable frames carry id 0");
    match frame.result {
        Err(e) => assert_eq!(e.code, code, "{}", e.message),
        Ok(r) => panic!("expected {code:?}, got {r:?}"),
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn flash_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("token.flash")).unwrap()
}

/// The token over the packet link, frame by frame: handshake, info, randomness, garbage,
/// oversize frames, and a restart that keeps the flash.
#[test]
fn private_token_over_the_packet_link_serves_frames_rejects_garbage_and_keeps_its_flash() {
    serves_frames_rejects_garbage_and_keeps_its_flash(Link::Ethernet);
}

/// The same over UART0, the serial path the USB token shares.
#[test]
fn private_token_over_the_uart_serves_frames_rejects_garbage_and_keeps_its_flash() {
    serves_frames_rejects_garbage_and_keeps_its_flash(Link::Uart);
}

fn serves_frames_rejects_garbage_and_keeps_its_flash(link: Link) {
    let dir = tempfile::tempdir().unwrap();
    let opts = LaunchOptions { link, ..options() };
    let token = PrivateToken::start(dir.path(), &opts).expect("start the QEMU token");
    println!("{link}: boot to ready (spawn QEMU -> Hello answered): {}", millis(token.boot_time()));
    let flash = flash_bytes(dir.path());
    assert_eq!(flash.len() as u64, launcher::FLASH_FILE_BYTES);

    let mut s = token.connect(TIMEOUT).unwrap();
    let mut r = FrameReader::new();
    let t = Instant::now();
    hello(&mut s, &mut r, 1);
    println!("Hello round trip: {}", millis(t.elapsed()));
    let keys_before = info_key_count(&mut s, &mut r, 2);

    let t = Instant::now();
    let a = random(&mut s, &mut r, 3, 32);
    println!("GenerateRandom(32) round trip: {}", millis(t.elapsed()));
    let b = random(&mut s, &mut r, 4, 1024);
    assert_eq!(a.len(), 32);
    assert_eq!(b.len(), 1024);
    assert_ne!(a, b[..32], "two draws of the DRBG differ");
    assert!(b.iter().any(|&x| x != b[0]), "1024 random bytes are not all equal");
    let p = call(
        &mut s,
        &mut r,
        5,
        Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 0 }),
    );
    assert_eq!(decode(&p).result.unwrap_err().code, ErrorCode::Validation);

    // Bad COBS (a code byte pointing past the delimiter), then service continues.
    s.send(&[0x05, 0x01, 0x00]).unwrap();
    expect_error_frame(&mut s, &mut r, ErrorCode::MalformedFrame);
    hello(&mut s, &mut r, 6);
    // Valid COBS, but not a postcard request.
    s.send(&[0x04, 0xff, 0xff, 0xff, 0x00]).unwrap();
    expect_error_frame(&mut s, &mut r, ErrorCode::MalformedFrame);
    // A frame longer than the largest the token takes.
    let mut big = vec![0x55u8; MAX_ENCODED_FRAME + 100];
    big.push(0);
    let t = Instant::now();
    s.send(&big).unwrap();
    expect_error_frame(&mut s, &mut r, ErrorCode::FrameTooLarge);
    println!(
        "oversize frame ({} bytes) answered in {} ({:.0} KB/s host->token)",
        big.len(),
        millis(t.elapsed()),
        big.len() as f64 / t.elapsed().as_secs_f64() / 1e3
    );
    assert_eq!(info_key_count(&mut s, &mut r, 7), keys_before);

    // A key, written to the flash by the token, must survive the restart.
    let p = call(
        &mut s,
        &mut r,
        8,
        Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: KeySpec::SymmetricDefault,
            key_usage: None,
            description: "survives a restart",
            tags: heapless::Vec::new(),
            user_presence_required: false,
        }),
    );
    let frame = decode(&p);
    let created = match frame.result {
        Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: meta })) => meta.key_id,
        other => panic!("CreateKey answered {other:?}"),
    };
    let keys_after_create = info_key_count(&mut s, &mut r, 9);
    assert_eq!(keys_after_create, keys_before + 1);
    drop(s);

    // Restart: SIGKILL (no chance to flush anything), then boot over the same flash file.
    let flash_before = flash_bytes(dir.path());
    let old_pid = token.pid();
    drop(token);
    assert!(!std::fs::read(format!("/proc/{old_pid}/cmdline")).map(|c| !c.is_empty()).unwrap_or(false));
    assert_eq!(flash_bytes(dir.path()), flash_before, "the flash file is exactly what the token wrote");
    let token = PrivateToken::start(dir.path(), &opts).expect("restart the QEMU token");
    let mut s = token.connect(TIMEOUT).unwrap();
    let mut r = FrameReader::new();
    hello(&mut s, &mut r, 1);
    assert_eq!(info_key_count(&mut s, &mut r, 2), keys_after_create, "keys survive the restart");
    let mut text = [0u8; 36];
    let p = call(
        &mut s,
        &mut r,
        3,
        Request::DescribeKey(pkms_protocol::request::DescribeKey { key_id: created.write_text(&mut text) }),
    );
    let frame = decode(&p);
    match frame.result {
        Ok(Response::KeyMetadata(pkms_protocol::reply::KeyMetadata { key_metadata: meta })) => {
            assert_eq!(meta.key_id, created);
            assert_eq!(meta.description, "survives a restart");
        }
        other => panic!("DescribeKey after restart answered {other:?}"),
    }
    assert_ne!(flash_before[..1024 * 1024], flash[..1024 * 1024], "the key went into the store's flash");
    assert!(flash_before[1024 * 1024..].iter().all(|&b| b == 0xFF), "nothing beyond the store's first MiB");
}

/// Kills whatever QEMU runs over a home when the test ends, even on panic.
struct KillOnDrop<'a>(&'a Path);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        launcher::kill_token(self.0);
    }
}

fn get_info_over(conn: &mut launcher::TokenConnection, id: u32) -> u32 {
    let mut r = FrameReader::new();
    info_key_count(conn, &mut r, id)
}

/// The kept-warm token of a home: a cold start, a warm reuse, concurrent users, a stale or
/// outdated pid file, a killed QEMU, and a missing QEMU binary.
#[test]
fn connect_starts_a_detached_token_and_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let _cleanup = KillOnDrop(&home);
    let opts = options();

    let t = Instant::now();
    let mut first = launcher::connect(&home, &opts).expect("cold connect");
    let cold = t.elapsed();
    assert!(first.started());
    assert_eq!(first.firmware_version(), pkms_firmware::FIRMWARE_VERSION);
    let pid = first.pid();
    get_info_over(&mut first, 1);
    drop(first);

    let t = Instant::now();
    let mut warm = launcher::connect(&home, &opts).expect("warm connect");
    let warm_time = t.elapsed();
    assert!(!warm.started(), "the running token is reused");
    assert_eq!(warm.pid(), pid);
    get_info_over(&mut warm, 1);
    drop(warm);
    println!("connect, cold (QEMU not running): {}; warm: {}", millis(cold), millis(warm_time));

    // The QEMU's command line names the home (how `pgrep -f "$PKMS_HOME"` finds it).
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let home_bytes = home.as_os_str().as_encoded_bytes();
    assert!(cmdline.windows(home_bytes.len()).any(|w| w == home_bytes));

    // Six users at once: each gets the token to itself in turn, all get answers, one QEMU.
    let workers: Vec<_> = (0..6)
        .map(|i| {
            let home = home.clone();
            let opts = opts.clone();
            std::thread::spawn(move || {
                let mut conn = launcher::connect(&home, &opts).expect("concurrent connect");
                get_info_over(&mut conn, 100 + i);
                conn.pid()
            })
        })
        .collect();
    for w in workers {
        assert_eq!(w.join().unwrap(), pid, "concurrent users share the one token");
    }

    // A pid file naming another firmware build: that token is replaced.
    std::fs::write(home.join("token.pid"), format!("{pid} 0000000000000000\n")).unwrap();
    let conn = launcher::connect(&home, &opts).unwrap();
    assert!(conn.started());
    assert_ne!(conn.pid(), pid);
    assert!(!std::fs::read(format!("/proc/{pid}/cmdline")).map(|c| !c.is_empty()).unwrap_or(false));
    let pid = conn.pid();
    drop(conn);

    // A pid file naming an unrelated live process (this test): it is left alone.
    let firmware_id = launcher::firmware::Image::embedded().expect("this test needs the embedded firmware");
    std::fs::write(home.join("token.pid"), format!("{} {}\n", std::process::id(), firmware_id.id())).unwrap();
    let conn = launcher::connect(&home, &opts).unwrap();
    assert!(conn.started(), "a pid that is not this home's QEMU is not trusted");
    assert_ne!(conn.pid(), pid, "the QEMU the pid file lost track of was replaced, not doubled");
    assert_eq!(launcher::kill_token(&home), 1, "exactly one QEMU ran over the flash file");
    drop(conn);

    // Killed from outside (as the acceptance check does): the next connect boots it again.
    let mut conn = launcher::connect(&home, &opts).unwrap();
    assert!(conn.started());
    let pid = conn.pid();
    drop(conn);
    std::process::Command::new("kill").arg(pid.to_string()).status().unwrap();
    let t = Instant::now();
    while std::fs::read(format!("/proc/{pid}/cmdline")).map(|c| !c.is_empty()).unwrap_or(false) {
        assert!(t.elapsed() < TIMEOUT, "QEMU ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
    conn = launcher::connect(&home, &opts).unwrap();
    assert!(conn.started());
    get_info_over(&mut conn, 1);
    drop(conn);

    // No QEMU: the error says how to install it.
    let other = dir.path().join("other");
    let missing = LaunchOptions { qemu: "/nonexistent/qemu-system-arm".into(), ..opts.clone() };
    let err = launcher::connect(&other, &missing).unwrap_err();
    assert!(matches!(err, LaunchError::QemuMissing { .. }), "{err}");
    assert!(err.to_string().contains("apt-get install qemu-system-arm"), "{err}");

    assert_eq!(launcher::kill_token(&home), 1);
    assert_eq!(launcher::kill_token(&home), 0);
}

/// A token nobody talks to ends itself after its idle timeout (exit status 0), while one in use
/// stays up: a kept-warm token never lingers. The timeout reaches the firmware through the
/// semihosting command line.
#[test]
fn idle_token_ends_itself_but_not_while_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LaunchOptions { idle_timeout: Duration::from_secs(2), ..LaunchOptions::default() };
    let mut token = PrivateToken::start(dir.path(), &opts).expect("start the QEMU token");
    let mut s = token.connect(TIMEOUT).unwrap();
    let mut r = FrameReader::new();
    for id in 1..=4 {
        std::thread::sleep(Duration::from_millis(900));
        hello(&mut s, &mut r, id);
    }
    assert!(token.is_running(), "3.6 s of requests at 0.9 s intervals keep a 2 s idle timeout away");
    let quiet = Instant::now();
    let status = loop {
        if let Some(status) = token.exit_status() {
            break status;
        }
        assert!(quiet.elapsed() < TIMEOUT, "the idle token did not end itself");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "idle exit is a clean exit: {status}");
    assert!(
        quiet.elapsed() >= Duration::from_millis(1500),
        "ended after {:?}, before its timeout",
        quiet.elapsed()
    );
    println!("idle timeout 2 s: QEMU ended {} after the last request", millis(quiet.elapsed()));
}
