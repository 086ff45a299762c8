//! Build script of both worker binaries (`astra-worker`, `astra-worker-smol`): link options
//! that lower idle RSS. They apply to the binaries' final link only, so changing them relinks
//! two executables instead of rebuilding every dependency (as rustflags would), and they
//! never reach proc-macros or build scripts. See BENCHMARKS.md §1 for what each one saves.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let link_dir = Path::new(&manifest).join("../link");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rerun-if-changed=../link/bins.rs");
    if !target.ends_with("-linux-gnu") {
        return;
    }

    // A position-dependent executable: with PIE the loader writes a relocated pointer into
    // every page of .data.rel.ro (vtables, string tables: ~1.9 MB of this binary), so all of
    // it is resident and private in every process. Linked at a fixed address those pointers
    // are final in the file and only the pages actually read are mapped. The code is still
    // compiled position-independent (shared libraries, heap, stack and mmap stay randomised;
    // the executable's own image does not). ASTRA_LINK_PIE=1 at build time keeps PIE.
    println!("cargo:rerun-if-env-changed=ASTRA_LINK_PIE");
    if std::env::var("ASTRA_LINK_PIE").as_deref() != Ok("1") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }

    // The link map, for link/record-startup-order.sh: the release binaries are stripped,
    // so it maps the traced code addresses back to symbol names (written beside the binary).
    // Always written, never switched by an option: ThinLTO gives the functions it promotes
    // names with a `.llvm.<hash>` suffix, and that hash changed whenever these link
    // arguments changed (measured: 270-400 of the ~1,700 recorded names were then missing).
    // The order is only exact when it is recorded from a build whose link line equals the
    // final one.
    let out = std::env::var("OUT_DIR").unwrap_or_default();
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    if let Some(profile_dir) = Path::new(&out).ancestors().nth(3) {
        let pkg = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
        let map = profile_dir.join(format!("{pkg}.map"));
        println!("cargo:rustc-link-arg-bins=-Wl,-Map={}", map.display());
    }

    // Start-up code packed together: `link/startup-order-<package>.txt` lists the functions
    // this binary runs from exec to registered-and-idle (recorded by `link/record-startup-order.sh`), and
    // lld lays them out first in .text. Without it they are spread over the whole 10 MB of
    // code and the kernel's 64 KB fault-around maps most of it. Names that no longer exist
    // (code changed since the recording) are skipped; re-record after larger changes.
    let pkg = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let name = format!("startup-order-{pkg}.txt");
    let order = link_dir.join(&name);
    println!("cargo:rerun-if-changed=../link/{name}");
    println!("cargo:rerun-if-env-changed=ASTRA_LINK_NO_ORDER");
    if order.is_file() && std::env::var("ASTRA_LINK_NO_ORDER").as_deref() != Ok("1") {
        if let Ok(order) = order.canonicalize() {
            println!(
                "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
                order.display()
            );
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        }
    }
}
