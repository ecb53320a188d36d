//! End-to-end suites for Pocket KMS: every suite is a function over a [`harness::TestToken`],
//! run against the in-process token (`tests/inprocess.rs`) and the QEMU token
//! (`tests/qemu.rs`) through the `pkms_lib` client, so the emulator and the host build of the
//! core answer the same requests the same way.
//!
//! A suite gets a fresh token (empty flash) and drives it through [`pkms_lib::Client`]; it may
//! restart the token (same flash) with [`harness::TestToken::restart`]. Tokens serve one
//! connection at a time: a suite drops a client before asking for another.

pub mod harness;
pub mod suites;

/// Declares one `#[test]` per named suite, each on a fresh token made by `$make`.
#[macro_export]
macro_rules! run_suites {
    ($make:expr; $($suite:ident),+ $(,)?) => {
        $(
            #[test]
            fn $suite() {
                let mut token = $make;
                $crate::suites::$suite(&mut token);
            }
        )+
    };
}
