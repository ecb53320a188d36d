//! The end-to-end suites against the QEMU token (mps2-an386 firmware under
//! `qemu-system-arm`), each on its own QEMU over a temporary flash file, killed when the test
//! ends. Needs `qemu-system-arm` (the README's test command installs it).

use pkms_tests::harness::Qemu;

pkms_tests::conformance_suites!(Qemu::new());

/// Power loss under QEMU: SIGKILL the QEMU process in the middle of a burst of rotations (and, once a key
/// is full, retirements), three times at different moments. After each restart every
/// ciphertext made before the burst decrypts, each key's versions are contiguous, and the
/// operation in flight at the kill is either whole or absent.
#[test]
fn sigkill_during_a_burst_of_rotations_loses_nothing() {
    use pkms_tests::harness::TestToken;
    use std::time::Duration;

    /// Rotate a key up to this many versions (the token holds at most 24 per key).
    const FULL: u32 = 20;
    let mut t = Qemu::new();
    let (keys, mut blobs) = {
        let mut c = t.client();
        // Key 0 holds the ciphertexts; key 1 is rotated and retired once key 0 is full.
        let keys =
            [pkms_tests::suites::new_key(&mut c, "blobs"), pkms_tests::suites::new_key(&mut c, "scratch")];
        let mut blobs = Vec::new();
        for i in 0..3 {
            let ctx = [("n", i.to_string())];
            let blob = c.encrypt(&keys[0], format!("secret {i}").as_bytes(), &ctx).unwrap().ciphertext_blob;
            blobs.push((ctx, blob));
        }
        (keys, blobs)
    };
    for (round, delay_ms) in [150u64, 320, 470].into_iter().enumerate() {
        let (mut newest, mut oldest) = ([0u32; 2], [0u32; 2]);
        {
            let mut c = t.client();
            for k in 0..2 {
                let m = c.describe_key(&keys[k]).unwrap();
                (newest[k], oldest[k]) = (m.current_key_version, m.oldest_key_version);
            }
        }
        let pid = t.pid();
        let mut c = t.client();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(delay_ms));
            std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status()
        });
        let mut acknowledged = 0u32;
        loop {
            let k = if newest[0] < FULL { 0 } else { 1 };
            let result = if newest[k] - oldest[k] + 1 >= FULL {
                c.retire_key_versions(&keys[k], newest[k]).map(|r| {
                    assert_eq!(r.oldest_key_version, newest[k]);
                    oldest[k] = newest[k];
                })
            } else {
                c.rotate_key_on_demand(&keys[k]).map(|r| {
                    assert_eq!(r.key_version, newest[k] + 1);
                    newest[k] += 1;
                })
            };
            match result {
                Ok(()) => acknowledged += 1,
                Err(e) => {
                    assert!(e.is_link(), "the only failure is the link dying: {e:?}");
                    break;
                }
            }
            assert!(acknowledged < 100_000, "QEMU was never killed");
        }
        assert!(killer.join().expect("killer thread").expect("run kill").success());
        drop(c);
        t.restart();

        let mut c = t.client();
        for (i, (ctx, blob)) in blobs.iter().enumerate() {
            let d = c.decrypt(blob, ctx, None).unwrap_or_else(|e| panic!("round {round}: blob {i}: {e}"));
            assert_eq!(d.plaintext.as_slice(), format!("secret {i}").as_bytes());
        }
        for k in 0..2 {
            let m = c.describe_key(&keys[k]).unwrap();
            assert!(
                m.current_key_version == newest[k] || m.current_key_version == newest[k] + 1,
                "round {round}, key {k}: acknowledged newest {}, token holds {}",
                newest[k],
                m.current_key_version
            );
            assert!(
                m.oldest_key_version == oldest[k] || m.oldest_key_version == newest[k],
                "round {round}, key {k}: acknowledged oldest {}, token holds {}",
                oldest[k],
                m.oldest_key_version
            );
            let versions: Vec<u32> =
                c.list_all_key_rotations(&keys[k]).unwrap().iter().map(|r| r.key_version).collect();
            assert_eq!(versions, (m.oldest_key_version..=m.current_key_version).collect::<Vec<_>>());
        }
        // The newest version of the blob key works; its blob joins those checked next round.
        let ctx = [("n", format!("r{round}"))];
        let e = c.encrypt(&keys[0], format!("secret {}", blobs.len()).as_bytes(), &ctx).unwrap();
        blobs.push((ctx, e.ciphertext_blob));
        println!(
            "round {round}: killed after {acknowledged} acknowledged operations (kill at {delay_ms} ms)"
        );
    }
}
