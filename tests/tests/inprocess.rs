//! The end-to-end suites against the token core run inside the test process
//! (`pkms_lib::inprocess`), its flash in a temporary file.

use pkms_tests::harness::InProcess;

pkms_tests::run_suites!(InProcess::new();
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
