//! The end-to-end suites against the token core run inside the test process
//! (`pkms_lib::inprocess`), its flash in a temporary file.

use pkms_tests::harness::InProcess;

pkms_tests::conformance_suites!(InProcess::new());
