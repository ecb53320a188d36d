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

/// The conformance suites every token (in-process, QEMU, a USB token) must pass, listed once:
/// declares one `#[test]` per suite on a fresh token made by `$make`.
#[macro_export]
macro_rules! conformance_suites {
    ($make:expr) => {
        $crate::run_suites!($make;
            info_and_random,
            bad_frames_then_normal_service,
            partial_frame_left_by_a_dead_client,
            create_describe_list_keys,
            encrypt_decrypt_with_context,
            tampered_blobs_are_refused,
            unknown_keys_and_size_limits,
            data_keys,
            keys_survive_restart,
            rotation_on_demand,
            re_encrypt_inside_the_token,
            scheduled_rotation,
            retire_key_versions,
            full_store_is_limit_exceeded,
            sign_and_verify,
            hmac_keys,
            key_usage_matrix,
            key_state_walk,
            deletion_after_the_window,
            aliases,
            tags_and_descriptions,
            user_presence_keys_on_an_emulated_token,
        );
    };
}

/// The access suites (authentication, grants, audit), listed once, on tokens made by `$make`.
#[macro_export]
macro_rules! auth_suites {
    ($make:expr) => {
        $crate::run_suites!($make;
            pin_lockout_and_unblock,
            grant_opens_a_refused_key,
            audit_export_verifies_and_one_changed_byte_fails,
            pin_check_cost,
            host_attacks_without_a_pin_are_refused,
        );
    };
}
