//! Issue 5 suites (authentication, grants, audit) against the QEMU token.

use pkms_tests::harness::Qemu;

pkms_tests::run_suites!(Qemu::new();
    pin_lockout_and_unblock,
    grant_opens_a_refused_key,
    audit_export_verifies_and_one_changed_byte_fails,
    pin_check_cost,
);
