//! The access suites (authentication, grants, audit) against the in-process token.

use pkms_tests::harness::InProcess;

pkms_tests::auth_suites!(InProcess::new());
