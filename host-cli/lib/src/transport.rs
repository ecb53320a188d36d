//! Byte transports to a token: unix socket, TCP (both to QEMU), serial device, and the
//! in-process token ([`crate::inprocess`]). A transport moves raw bytes; framing is the
//! client's business ([`pkms_protocol::framing`]).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::error::LinkError;

/// A bidirectional byte pipe to a token.
pub trait Transport: Send {
    /// Writes all of `bytes`.
    fn send(&mut self, bytes: &[u8]) -> Result<(), LinkError>;
    /// Reads at least one byte into `buf`, waiting at most `timeout`. Returns the number of
    /// bytes read (never 0): a timeout is [`LinkError::Timeout`], end of stream is
    /// [`LinkError::Closed`].
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError>;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        (**self).send(bytes)
    }
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        (**self).recv(buf, timeout)
    }
}

/// A socket with a settable read timeout.
pub trait TimeoutStream: Read + Write + Send {
    /// Sets the read timeout (never `Some(0)`).
    fn set_timeout(&self, timeout: Duration) -> std::io::Result<()>;
    /// Switches non-blocking mode on or off (see [`StreamTransport`]'s reading).
    fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()>;
}

impl TimeoutStream for UnixStream {
    fn set_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
    }
    fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
        UnixStream::set_nonblocking(self, nonblocking)
    }
}

impl TimeoutStream for TcpStream {
    fn set_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
    }
    fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
        TcpStream::set_nonblocking(self, nonblocking)
    }
}

/// Pause between looks at the socket while the rest of a frame is arriving.
const NAP: Duration = Duration::from_micros(20);
/// Napping gives way to a plain blocking read after this long without a byte.
const NAP_WINDOW: Duration = Duration::from_millis(2);

/// A transport over a connected socket (unix or TCP).
///
/// The QEMU token's UART holds one byte, so its answers arrive one `send` per byte, microseconds
/// apart. A reader blocked in `read` is woken every few bytes, and each wake-up is paid for by
/// the QEMU thread producing them. So once part of a frame has arrived (the bytes read so far do
/// not end with the frame delimiter 0x00), the rest is collected with non-blocking reads and
/// [`NAP`]s between them, for up to [`NAP_WINDOW`] without a byte, then with a blocking read
/// again. The first byte of an answer is always waited for with a blocking read: the token may
/// compute for a while. (Figures in docs/benchmarks.md, "The QEMU UART".)
pub struct StreamTransport<S> {
    stream: S,
    /// The last bytes read ended inside a frame: more are on their way.
    mid_frame: bool,
}

impl<S: TimeoutStream> StreamTransport<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Self {
        StreamTransport { stream, mid_frame: false }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

impl StreamTransport<UnixStream> {
    /// Connects to a unix socket (QEMU `-chardev socket,path=…,server=on`).
    pub fn connect_unix(path: &std::path::Path) -> Result<Self, LinkError> {
        let s = UnixStream::connect(path)
            .map_err(|e| LinkError::Open(format!("unix socket {}: {e}", path.display())))?;
        Ok(Self::new(s))
    }
}

impl StreamTransport<TcpStream> {
    /// Connects to `host:port` (QEMU `-chardev socket,host=…,port=…,server=on,nodelay=on`), with
    /// Nagle's algorithm off on our side too.
    pub fn connect_tcp(addr: &str) -> Result<Self, LinkError> {
        let s = TcpStream::connect(addr).map_err(|e| LinkError::Open(format!("tcp {addr}: {e}")))?;
        s.set_nodelay(true)?;
        Ok(Self::new(s))
    }
}

fn read_with_timeout<R: Read>(r: &mut R, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
    loop {
        match r.read(buf) {
            Ok(0) => return Err(LinkError::Closed),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(LinkError::Timeout(timeout))
            }
            Err(e) => return Err(LinkError::Io(e)),
        }
    }
}

impl<S: TimeoutStream> Transport for StreamTransport<S> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        self.stream.write_all(bytes)?;
        self.stream.flush()?;
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        let started = Instant::now();
        let n = match self.nap_read(buf, timeout.min(NAP_WINDOW))? {
            Some(n) => n,
            None => {
                let left = timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(LinkError::Timeout(timeout));
                }
                self.stream.set_timeout(left)?;
                read_with_timeout(&mut self.stream, buf, timeout)?
            }
        };
        self.mid_frame = buf[n - 1] != 0;
        Ok(n)
    }
}

impl<S: TimeoutStream> StreamTransport<S> {
    /// While mid-frame: non-blocking reads with naps between them, for up to `window`. `None`
    /// when not mid-frame or nothing came in time.
    fn nap_read(&mut self, buf: &mut [u8], window: Duration) -> Result<Option<usize>, LinkError> {
        if !self.mid_frame || window.is_zero() {
            return Ok(None);
        }
        self.stream.set_nonblocking(true)?;
        let started = Instant::now();
        let result = loop {
            match self.stream.read(buf) {
                Ok(0) => break Err(LinkError::Closed),
                Ok(n) => break Ok(Some(n)),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if started.elapsed() >= window {
                        break Ok(None);
                    }
                    std::thread::sleep(NAP);
                }
                Err(e) => break Err(LinkError::Io(e)),
            }
        };
        self.stream.set_nonblocking(false)?;
        result
    }
}

/// A transport over a serial device (USB CDC-ACM token, or a pty to QEMU).
pub struct SerialTransport {
    port: Box<dyn serialport::SerialPort>,
}

impl SerialTransport {
    /// How long [`SerialTransport::open`] waits for another process to let go of the port.
    pub const BUSY_WAIT: Duration = Duration::from_secs(60);

    /// Opens a serial device path such as `/dev/ttyACM0` for exclusive use. If another process
    /// (e.g. a parallel `pkms`) holds the port, waits up to [`Self::BUSY_WAIT`] for it, so
    /// processes sharing one token take turns. The baud rate is irrelevant for CDC-ACM; 115200
    /// is set for real UARTs.
    pub fn open(path: &str) -> Result<Self, LinkError> {
        let deadline = std::time::Instant::now() + Self::BUSY_WAIT;
        let mut pause = Duration::from_millis(5);
        loop {
            match serialport::new(path, 115_200).timeout(Duration::from_secs(1)).open() {
                Ok(port) => return Ok(SerialTransport { port }),
                // serialport reports a port another process holds (flock) as NoDevice "Unable
                // to acquire exclusive lock".
                Err(e) if e.kind() == serialport::ErrorKind::NoDevice && e.description.contains("lock") => {
                    if std::time::Instant::now() >= deadline {
                        return Err(LinkError::Open(format!(
                            "serial device {path} stayed busy for {:?}: another program holds it",
                            Self::BUSY_WAIT
                        )));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(LinkError::Open(format!("serial device {path}: {e}"))),
            }
        }
    }

    /// Wraps a port opened elsewhere (e.g. one end of a pseudo-terminal pair in tests).
    pub fn from_port(port: Box<dyn serialport::SerialPort>) -> Self {
        SerialTransport { port }
    }
}

impl Transport for SerialTransport {
    fn send(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        self.port.write_all(bytes)?;
        self.port.flush()?;
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, LinkError> {
        self.port
            .set_timeout(timeout.max(Duration::from_millis(1)))
            .map_err(|e| LinkError::Io(std::io::Error::other(e)))?;
        read_with_timeout(&mut self.port, buf, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_stream_moves_bytes_and_times_out() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut t = StreamTransport::new(a);
        t.send(b"hello").unwrap();
        let mut got = [0u8; 5];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        let mut buf = [0u8; 8];
        assert!(matches!(t.recv(&mut buf, Duration::from_millis(20)), Err(LinkError::Timeout(_))));
        b.write_all(b"xy").unwrap();
        assert_eq!(t.recv(&mut buf, Duration::from_secs(1)).unwrap(), 2);
        drop(b);
        assert!(matches!(t.recv(&mut buf, Duration::from_secs(1)), Err(LinkError::Closed)));
    }

    /// Reads from `t` until a 0x00 arrives; returns the bytes and how many reads it took.
    fn read_frame<S: TimeoutStream>(t: &mut StreamTransport<S>, timeout: Duration) -> (Vec<u8>, usize) {
        let mut got = Vec::new();
        let mut reads = 0;
        while !got.contains(&0) {
            let mut buf = [0u8; 64];
            let n = t.recv(&mut buf, timeout).unwrap();
            got.extend_from_slice(&buf[..n]);
            reads += 1;
        }
        (got, reads)
    }

    /// A frame dribbling in byte by byte (as from QEMU's UART) is read whole through the
    /// non-blocking reads; the stream is blocking again afterwards, so a read with nothing to
    /// come waits for its whole timeout.
    #[test]
    fn a_dribbling_frame_is_read_whole_and_reading_blocks_again() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut t = StreamTransport::new(a);
        let writer = std::thread::spawn(move || {
            for &byte in b"frame one\0" {
                b.write_all(&[byte]).unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
            b
        });
        let (got, _) = read_frame(&mut t, Duration::from_secs(5));
        assert_eq!(got, b"frame one\0");
        let mut b = writer.join().unwrap();
        assert!(!t.mid_frame);
        let started = Instant::now();
        let mut buf = [0u8; 8];
        assert!(matches!(t.recv(&mut buf, Duration::from_millis(30)), Err(LinkError::Timeout(_))));
        assert!(started.elapsed() >= Duration::from_millis(30), "{:?}", started.elapsed());
        b.write_all(b"x").unwrap();
        assert_eq!(t.recv(&mut buf, Duration::from_secs(1)).unwrap(), 1);
    }

    /// A frame that stalls mid-way for longer than the nap window is finished by a blocking
    /// read; a stall past the caller's timeout is a timeout, not an early return.
    #[test]
    fn a_stalled_frame_falls_back_to_blocking_reads() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut t = StreamTransport::new(a);
        b.write_all(b"ab").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(t.recv(&mut buf, Duration::from_secs(1)).unwrap(), 2);
        assert!(t.mid_frame);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(NAP_WINDOW * 10);
            b.write_all(b"c\0").unwrap();
            b
        });
        let started = Instant::now();
        let (got, _) = read_frame(&mut t, Duration::from_secs(5));
        assert_eq!(got, b"c\0");
        assert!(started.elapsed() >= NAP_WINDOW * 10);
        let mut b = writer.join().unwrap();

        b.write_all(b"d").unwrap();
        assert_eq!(t.recv(&mut buf, Duration::from_secs(1)).unwrap(), 1);
        let started = Instant::now();
        assert!(matches!(t.recv(&mut buf, Duration::from_millis(1)), Err(LinkError::Timeout(_))));
        assert!(started.elapsed() >= Duration::from_millis(1));
        let started = Instant::now();
        assert!(matches!(t.recv(&mut buf, NAP_WINDOW * 5), Err(LinkError::Timeout(_))));
        assert!(started.elapsed() >= NAP_WINDOW * 5, "{:?}", started.elapsed());
    }

    /// Serves an in-process token over a byte stream until the peer closes it.
    fn serve<S: Read + Write>(mut stream: S) {
        use crate::inprocess::InProcessToken;
        let mut token = InProcessToken::ephemeral();
        let mut buf = [0u8; 4096];
        let mut out = vec![0u8; 16 * 1024];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                return;
            }
            token.send(&buf[..n]).unwrap();
            while let Ok(m) = token.recv(&mut out, Duration::ZERO) {
                if stream.write_all(&out[..m]).is_err() {
                    return;
                }
            }
        }
    }

    /// `tcp:HOST:PORT` and `unix:PATH` devices reach a token through [`crate::connect::open`].
    #[test]
    fn tcp_and_unix_devices_reach_a_token() {
        use crate::client::NO_CONTEXT;
        use crate::connect::{open, DeviceSpec};
        use crate::model::CreateKeyParams;

        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let tcp_server = std::thread::spawn(move || serve(tcp.accept().unwrap().0));
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("token.sock");
        let unix = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let unix_server = std::thread::spawn(move || serve(unix.accept().unwrap().0));

        for spec in [DeviceSpec::Tcp(addr.to_string()), DeviceSpec::Unix(sock.clone())] {
            let mut c = open(&spec).unwrap();
            let key = c.create_key(&CreateKeyParams::default()).unwrap().key_id.to_string();
            let big = vec![0x5Au8; 4096];
            let blob = c.encrypt(&key, &big, NO_CONTEXT).unwrap().ciphertext_blob;
            assert_eq!(
                c.decrypt(&blob, NO_CONTEXT, None).unwrap().plaintext.as_slice(),
                big.as_slice(),
                "{spec:?}"
            );
        }
        tcp_server.join().unwrap();
        unix_server.join().unwrap();
        let refused = open(&DeviceSpec::Tcp(addr.to_string())).unwrap_err();
        assert!(refused.is_link(), "{refused:?}");
    }

    /// The serial transport, opened by path, reaches a token serving the other end of a
    /// pseudo-terminal (as a USB CDC-ACM token's tty would), with the largest frames.
    #[test]
    fn serial_transport_over_a_pty_reaches_a_token() {
        use crate::client::{Client, NO_CONTEXT};
        use crate::inprocess::InProcessToken;
        use crate::model::CreateKeyParams;
        use serialport::SerialPort;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;

        let (mut device, host_end) = serialport::TTYPort::pair().expect("pseudo-terminal pair");
        let path = host_end.name().expect("pty path");
        // Reopened by path below, as pkms opens a token's tty.
        drop(host_end);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_server = Arc::clone(&stop);
        let server = std::thread::spawn(move || {
            let mut token = InProcessToken::ephemeral();
            device.set_timeout(Duration::from_millis(20)).unwrap();
            let mut buf = [0u8; 4096];
            let mut out = vec![0u8; 16 * 1024];
            while !stop_server.load(Ordering::Relaxed) {
                match device.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        token.send(&buf[..n]).unwrap();
                        while let Ok(m) = token.recv(&mut out, Duration::ZERO) {
                            device.write_all(&out[..m]).unwrap();
                        }
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => {}
                    // EIO while no process has the terminal side open.
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });

        let mut c = Client::connect(SerialTransport::open(&path).unwrap()).unwrap();
        assert_eq!(c.get_info().unwrap().board, "host-in-process");
        assert_eq!(c.generate_random(1024).unwrap().len(), 1024);
        let key = c.create_key(&CreateKeyParams::default()).unwrap().key_id.to_string();
        let plaintext: Vec<u8> = (0..4096u32).map(|i| (i % 256) as u8).collect();
        let blob = c.encrypt(&key, &plaintext, NO_CONTEXT).unwrap().ciphertext_blob;
        assert_eq!(c.decrypt(&blob, NO_CONTEXT, None).unwrap().plaintext.as_slice(), plaintext.as_slice());

        // A second opener waits while the first holds the port, then gets it.
        let started = std::time::Instant::now();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(c);
        });
        let mut second = Client::connect(SerialTransport::open(&path).unwrap()).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250), "the second opener waited");
        releaser.join().unwrap();
        assert_eq!(second.generate_random(8).unwrap().len(), 8);
        drop(second);
        stop.store(true, Ordering::Relaxed);
        server.join().expect("device thread");
    }
}
