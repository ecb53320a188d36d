//! The access suites (authentication, grants, audit) against the QEMU token.

use pkms_tests::harness::Qemu;

pkms_tests::auth_suites!(Qemu::new());
