//! The end-to-end suites against the token core run inside the test process
//! (`pkms_lib::inprocess`), its flash in a temporary file.

use pkms_tests::harness::InProcess;

pkms_tests::run_suites!(InProcess::new();
    info_and_random,
    bad_frames_then_normal_service,
    partial_frame_left_by_a_dead_client,
);
