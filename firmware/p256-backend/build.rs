//! Sets `pkms_cortex_m4` when building for a core with the DSP extension (UMAAL) that the
//! assembly backend needs: thumbv7em (Cortex-M4/M7) and thumbv8m.main (Cortex-M33).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(pkms_cortex_m4)");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") || target.starts_with("thumbv8m.main") {
        println!("cargo:rustc-cfg=pkms_cortex_m4");
    }
}
