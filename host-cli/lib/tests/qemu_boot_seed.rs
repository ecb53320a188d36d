//! The QEMU token's entropy is the boot seed the launcher has QEMU's loader place in RAM: every
//! start gets its own (two new tokens make two different device keys), the seed file is gone
//! once the token answers, a QEMU started without the seed answers Hello and GetInfo and refuses
//! keys and randomness saying why, and a guest reset never reuses a seed silently (the launcher's
//! QEMU ends instead; a QEMU without `-no-reboot` gets the same bytes again, and the firmware
//! refuses them).
//!
//! Needs `qemu-system-arm`.

mod frame_support;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use frame_support::FrameReader;
use pkms_lib::launcher::{self, firmware, LaunchOptions, Link, PrivateToken, TokenPaths, FLASH_FILE_BYTES};
use pkms_lib::transport::{StreamTransport, Transport};
use pkms_protocol::framing;
use pkms_protocol::limits::MAX_ENCODED_FRAME;
use pkms_protocol::{
    ErrorCode, KeySpec, Request, RequestFrame, Response, ResponseFrame, TokenInfo, WireError,
    PROTOCOL_VERSION,
};

const TIMEOUT: Duration = Duration::from_secs(20);

fn options() -> LaunchOptions {
    // Short idle timeout: should this test process die, its QEMUs end on their own soon.
    LaunchOptions { idle_timeout: Duration::from_secs(120), link: Link::Uart, ..LaunchOptions::default() }
}

/// One request, one answer, over any link to the token.
struct Caller<T: Transport> {
    link: T,
    reader: FrameReader,
    next_id: u32,
    payload: Vec<u8>,
}

impl<T: Transport> Caller<T> {
    fn new(link: T) -> Self {
        Caller { link, reader: FrameReader::new(), next_id: 1, payload: Vec::new() }
    }

    /// Sends `request` in the clear and returns the decoded answer (kept until the next call).
    fn call(&mut self, request: Request<'_>) -> ResponseFrame<'_> {
        let id = self.next_id;
        self.next_id += 1;
        let mut buf = vec![0u8; MAX_ENCODED_FRAME];
        let n = framing::encode(&RequestFrame { id, now: Some(1_800_000_000), request }, &mut buf).unwrap();
        self.link.send(&buf[..n]).unwrap();
        self.payload = self.reader.next_payload(&mut self.link, TIMEOUT);
        let frame = framing::decode_response(&self.payload).expect("a decodable answer");
        assert_eq!(frame.id, id);
        frame
    }

    fn hello(&mut self) {
        let frame =
            self.call(Request::Hello(pkms_protocol::request::Hello { protocol_version: PROTOCOL_VERSION }));
        assert!(matches!(frame.result, Ok(Response::Hello(_))), "Hello answered {:?}", frame.result);
    }

    fn info(&mut self) -> TokenInfo<'_> {
        match self.call(Request::GetInfo(pkms_protocol::request::GetInfo {})).result {
            Ok(Response::Info(pkms_protocol::reply::Info { info })) => info,
            other => panic!("GetInfo answered {other:?}"),
        }
    }

    fn device_key(&mut self) -> Result<Vec<u8>, (ErrorCode, String)> {
        match self.call(Request::GetDeviceKey(pkms_protocol::request::GetDeviceKey {})).result {
            Ok(Response::DeviceKey(pkms_protocol::reply::DeviceKey { public_key })) => {
                Ok(public_key.to_vec())
            }
            Ok(other) => panic!("GetDeviceKey answered {other:?}"),
            Err(WireError { code, message, .. }) => Err((code, message.to_owned())),
        }
    }

    fn random(&mut self) -> Result<Vec<u8>, (ErrorCode, String)> {
        let request = Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 32 });
        match self.call(request).result {
            Ok(Response::Random(pkms_protocol::reply::Random { plaintext })) => Ok(plaintext.to_vec()),
            Ok(other) => panic!("GenerateRandom answered {other:?}"),
            Err(WireError { code, message, .. }) => Err((code, message.to_owned())),
        }
    }

    fn create_key(&mut self) -> Result<(), (ErrorCode, String)> {
        let request = Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: KeySpec::SymmetricDefault,
            key_usage: None,
            description: "needs entropy",
            tags: heapless::Vec::new(),
            user_presence_required: false,
        });
        match self.call(request).result {
            Ok(_) => Ok(()),
            Err(WireError { code, message, .. }) => Err((code, message.to_owned())),
        }
    }
}

/// Asserts that `result` is the refusal of a token without entropy, naming `why`.
fn refused_for<T: std::fmt::Debug>(what: &str, result: Result<T, (ErrorCode, String)>, why: &str) {
    match result {
        Err((code, message)) => {
            assert_eq!(code, ErrorCode::Internal, "{what}: {message}");
            assert!(message.starts_with("no entropy") && message.contains(why), "{what}: {message}");
        }
        Ok(v) => panic!("{what} was served without entropy: {v:?}"),
    }
}

#[test]
fn every_launch_gets_its_own_boot_seed_and_leaves_no_seed_file() {
    let opts = options();
    let mut keys = Vec::new();
    let mut randoms = Vec::new();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let tokens: Vec<PrivateToken> =
        dirs.iter().map(|d| PrivateToken::start(d.path(), &opts).expect("the token starts")).collect();
    for token in &tokens {
        assert!(!token.paths().seed.exists(), "the boot seed file is still there after the token answered");
        let mut caller = Caller::new(token.connect(TIMEOUT).expect("connect"));
        caller.hello();
        let info = caller.info();
        assert!(info.entropy_source.contains("QEMU's loader"), "{}", info.entropy_source);
        assert!(info.entropy_source.contains("emulator only"), "{}", info.entropy_source);
        assert!(info.entropy_source.contains("no hardware RNG"), "{}", info.entropy_source);
        keys.push(caller.device_key().expect("a seeded token has a device key"));
        randoms.push(caller.random().expect("a seeded token gives random bytes"));

        let cmdline = std::fs::read(format!("/proc/{}/cmdline", token.pid())).unwrap();
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        assert!(args.contains(&&b"-no-reboot"[..]), "QEMU would boot again over the same seed");
        assert!(args.iter().any(|a| a.starts_with(b"loader,file=")), "no loader device");
    }
    assert_ne!(keys[0], keys[1], "two new tokens made the same device key: the same seed");
    assert_ne!(randoms[0], randoms[1], "two new tokens gave the same random bytes: the same seed");

    // Started again over its flash: the device key stays (it is on the flash), the stream differs.
    drop(tokens);
    let again = PrivateToken::start(dirs[0].path(), &opts).expect("restart");
    let mut caller = Caller::new(again.connect(TIMEOUT).expect("connect"));
    assert_eq!(caller.device_key().unwrap(), keys[0]);
    assert_ne!(caller.random().unwrap(), randoms[0], "a restart replayed the random stream");
}

/// QEMU over `home`'s flash with the launcher's arguments, minus the boot seed's loader device
/// unless `seed` (then a new seed file is written first), with `-no-reboot` only if `no_reboot`,
/// and a monitor on `home/monitor.sock` so the test can reset the machine.
fn spawn_qemu(home: &Path, opts: &LaunchOptions, seed: bool, no_reboot: bool) -> Child {
    let paths = TokenPaths::new(home);
    if !paths.flash.exists() {
        let mut f =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&paths.flash).unwrap();
        f.write_all(&vec![0xFF; FLASH_FILE_BYTES as usize]).unwrap();
    }
    firmware::Image::resolve(None).unwrap().extract(&paths.firmware).unwrap();
    if seed {
        let mut bytes = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        std::fs::write(&paths.seed, bytes).unwrap();
    }
    let launcher_args = launcher::qemu_arguments(home, opts);
    let mut args: Vec<OsString> = Vec::new();
    let mut it = launcher_args.into_iter();
    let mut saw_loader = false;
    while let Some(a) = it.next() {
        if a == "-device" {
            let value = it.next().unwrap();
            saw_loader |= value.as_encoded_bytes().starts_with(b"loader,");
            if seed {
                args.extend([a, value]);
            }
        } else if a == "-monitor" {
            let _none = it.next();
            let mut m = OsString::from("unix:");
            m.push(home.join("monitor.sock"));
            m.push(",server=on,wait=off");
            args.extend(["-monitor".into(), m]);
        } else if a == "-no-reboot" {
            if no_reboot {
                args.push(a);
            }
        } else {
            args.push(a);
        }
    }
    assert!(saw_loader, "the launcher gives QEMU no loader device");
    let _ = std::fs::remove_file(&paths.socket);
    let log = std::fs::File::create(home.join("qemu.log")).unwrap();
    Command::new(&opts.qemu)
        .args(args)
        .current_dir(home)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start qemu-system-arm")
}

/// Connects to the UART socket of `home`'s QEMU, waiting for it to appear.
fn uart(home: &Path, child: &mut Child) -> Caller<StreamTransport<UnixStream>> {
    let socket = TokenPaths::new(home).socket;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(stream) = UnixStream::connect(&socket) {
            return Caller::new(StreamTransport::new(stream));
        }
        assert!(child.try_wait().unwrap().is_none(), "QEMU ended: see {}", home.join("qemu.log").display());
        assert!(Instant::now() < deadline, "the UART socket never appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends a command to the QEMU monitor of `home`.
fn monitor(home: &Path, command: &str) {
    let mut m = UnixStream::connect(home.join("monitor.sock")).expect("monitor socket");
    m.write_all(format!("{command}\n").as_bytes()).unwrap();
    m.flush().unwrap();
    // Let the monitor read the line before the connection closes.
    std::thread::sleep(Duration::from_millis(300));
}

/// Kills and reaps the child when dropped.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_token_started_without_its_boot_seed_answers_hello_and_info_and_refuses_keys_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options();
    let mut qemu = Reap(spawn_qemu(dir.path(), &opts, false, true));
    let mut caller = uart(dir.path(), &mut qemu.0);

    caller.hello();
    let info = caller.info();
    assert!(!info.initialized);
    assert_eq!(info.key_count, 0);
    assert!(info.entropy_source.contains("QEMU's loader"), "{}", info.entropy_source);
    refused_for("CreateKey", caller.create_key(), "placed no boot seed");
    refused_for("GetDeviceKey", caller.device_key(), "placed no boot seed");
    refused_for("GenerateRandom", caller.random(), "placed no boot seed");
    // Still answering, still refusing: the refusal is an answer, not an end.
    caller.hello();
    refused_for("CreateKey again", caller.create_key(), "placed no boot seed");
    assert!(qemu.0.try_wait().unwrap().is_none(), "QEMU ended");
}

#[test]
fn a_guest_reset_never_reuses_the_boot_seed_silently() {
    let opts = options();

    // As the launcher runs it (-no-reboot): a system reset ends QEMU.
    let dir = tempfile::tempdir().unwrap();
    let mut qemu = Reap(spawn_qemu(dir.path(), &opts, true, true));
    let mut caller = uart(dir.path(), &mut qemu.0);
    caller.device_key().expect("seeded");
    monitor(dir.path(), "system_reset");
    let deadline = Instant::now() + TIMEOUT;
    while qemu.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "QEMU with -no-reboot kept running after a system reset");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Without -no-reboot QEMU places the same seed again at the reset; the firmware knows it.
    let dir = tempfile::tempdir().unwrap();
    let mut qemu = Reap(spawn_qemu(dir.path(), &opts, true, false));
    let mut caller = uart(dir.path(), &mut qemu.0);
    let key = caller.device_key().expect("seeded");
    caller.random().expect("seeded");
    // QEMU has read the file; removing it shows the reset does not read it again.
    std::fs::remove_file(TokenPaths::new(dir.path()).seed).unwrap();
    monitor(dir.path(), "system_reset");
    assert!(qemu.0.try_wait().unwrap().is_none(), "QEMU ended at the reset");
    caller.hello();
    caller.info();
    refused_for("GetDeviceKey after the reset", caller.device_key(), "used before");
    refused_for("GenerateRandom after the reset", caller.random(), "used before");
    refused_for("CreateKey after the reset", caller.create_key(), "used before");
    assert!(!key.is_empty());
}
