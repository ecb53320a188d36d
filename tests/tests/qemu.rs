//! The end-to-end suites against the QEMU token (mps2-an386 firmware under
//! `qemu-system-arm`), each on its own QEMU over a temporary flash file, killed when the test
//! ends. Needs `qemu-system-arm` (the README's test command installs it).

use pkms_tests::harness::Qemu;

pkms_tests::run_suites!(Qemu::new();
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
    sign_and_verify,
    hmac_keys,
    key_usage_matrix,
    key_state_walk,
    deletion_after_the_window,
    aliases,
    tags_and_descriptions,
);
