//! Builds the `ebpf` page-cache program with clang when clang is there. Without
//! clang the agent still builds, and its `ebpf` method says at start-up that
//! this build lacks it (the `estimate` method does not need it).

use std::path::PathBuf;
use std::process::Command;

const PROGRAM: &str = "src/sources/pagecache.bpf.c";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(brokerwatch_ebpf)");
    println!("cargo::rerun-if-changed={PROGRAM}");
    println!("cargo::rerun-if-env-changed=CLANG");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("pagecache.bpf.o");
    let built = Command::new(&clang)
        .args([
            "-target", "bpf", "-O2", "-g", "-Wall", "-Werror", "-c", PROGRAM, "-o",
        ])
        .arg(&object)
        .status();
    match built {
        Ok(status) if status.success() => println!("cargo::rustc-cfg=brokerwatch_ebpf"),
        Ok(status) => panic!("{clang} failed to build {PROGRAM} ({status})"),
        Err(e) => println!(
            "cargo::warning=the agent is built without the ebpf page-cache method: {clang}: {e} (install clang to build it)"
        ),
    }
}
