//! The SLIP-39 shares of the backup key against the reference implementation (PyPI
//! `shamir-mnemonic` 0.3.0, in the virtual environment scripts/setup.sh makes:
//! `target/shamir-venv`, or PKMS_SHAMIR_VENV): it combines the shares pkms makes, and pkms
//! combines the shares it makes (with and without the extendable flag, several thresholds).

use std::path::PathBuf;
use std::process::Command;

use pkms_lib::backup::slip39;
use rand_core::OsRng;

fn python() -> PathBuf {
    let venv = std::env::var_os("PKMS_SHAMIR_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/shamir-venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "the SLIP-39 reference implementation is not installed in {}: run scripts/setup.sh",
        venv.display()
    );
    py
}

fn reference(script: &str, args: &[String]) -> String {
    let out = Command::new(python()).arg("-c").arg(script).args(args).output().expect("python runs");
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

const COMBINE: &str = "import sys, shamir_mnemonic as s; print(s.combine_mnemonics(sys.argv[1:]).hex())";

#[test]
fn the_reference_implementation_combines_the_shares_pkms_makes() {
    for (threshold, count) in [(2u8, 3u8), (3, 5), (5, 16), (16, 16)] {
        let secret: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(threshold));
        let shares = slip39::split(&secret, threshold, count, &mut OsRng).unwrap();
        for s in &shares {
            assert_eq!(s.split_whitespace().count(), 33);
        }
        // The last `threshold` shares, and the first `threshold`.
        for subset in [&shares[..threshold as usize], &shares[(count - threshold) as usize..]] {
            let got = reference(COMBINE, subset);
            assert_eq!(got, hex(&secret), "{threshold}-of-{count}");
        }
        // One share fewer than the threshold: the reference refuses.
        let few = &shares[..threshold as usize - 1];
        let out = Command::new(python()).arg("-c").arg(COMBINE).args(few).output().unwrap();
        assert!(!out.status.success(), "{threshold}-of-{count}: the reference combined too few shares");
    }
}

#[test]
fn pkms_combines_the_shares_the_reference_implementation_makes() {
    const MAKE: &str = "import sys, shamir_mnemonic as s; \
        m = s.generate_mnemonics(1, [(int(sys.argv[1]), int(sys.argv[2]))], bytes.fromhex(sys.argv[3]), \
        extendable=sys.argv[4] == '1', iteration_exponent=int(sys.argv[5])); print('\\n'.join(m[0]))";
    for (threshold, count, extendable, exponent) in [(2, 3, "1", "1"), (3, 5, "0", "0"), (4, 7, "1", "2")] {
        let secret: [u8; 32] = std::array::from_fn(|i| (i as u8) ^ 0x5a);
        let args = [
            threshold.to_string(),
            count.to_string(),
            hex(&secret),
            extendable.to_string(),
            exponent.to_string(),
        ];
        let shares: Vec<String> = reference(MAKE, &args).lines().map(str::to_owned).collect();
        assert_eq!(shares.len(), count);
        let got = slip39::combine(&shares[count - threshold..]).unwrap();
        assert_eq!(&got[..], &secret[..]);
        assert!(slip39::combine(&shares[..threshold - 1]).is_err());
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
