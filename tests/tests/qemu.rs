//! The end-to-end suites against the QEMU token (mps2-an386 firmware under
//! `qemu-system-arm`), each on its own QEMU over a temporary flash file, killed when the test
//! ends. Needs `qemu-system-arm` (the README's test command installs it).

use pkms_tests::harness::Qemu;

pkms_tests::run_suites!(Qemu::new();
    info_and_random,
    bad_frames_then_normal_service,
    partial_frame_left_by_a_dead_client,
);
