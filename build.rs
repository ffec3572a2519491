//! Lets the binaries and test binaries find a prebuilt libduckdb on their own.
//!
//! Without the `bundled` feature, `libduckdb-sys` links `-lduckdb` from `DUCKDB_LIB_DIR` but
//! records nowhere where it found it, so every run would need `LD_LIBRARY_PATH`. Here that
//! folder becomes the rpath of everything this package links (binaries, tests, examples).
//! A link argument of our own, rather than `RUSTFLAGS`, so that setting or moving the folder
//! relinks this crate only instead of rebuilding every dependency.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    let lake = env::var_os("CARGO_FEATURE_LAKE").is_some();
    let bundled = env::var_os("CARGO_FEATURE_BUNDLED").is_some();
    if !lake || bundled {
        return;
    }
    let Some(dir) = env::var_os("DUCKDB_LIB_DIR") else {
        println!(
            "cargo:warning=DUCKDB_LIB_DIR is not set: linking a libduckdb 1.5.5 from the system's \
             library path. scripts/setup.sh fetches the prebuilt one; `--features bundled` \
             compiles DuckDB instead."
        );
        return;
    };
    let dir = Path::new(&dir);
    let lib = match env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("macos") => "libduckdb.dylib",
        Ok("windows") => "duckdb.dll",
        _ => "libduckdb.so",
    };
    if !dir.join(lib).is_file() {
        // Fail here with the cause rather than later with the linker's "cannot find -lduckdb".
        eprintln!(
            "DUCKDB_LIB_DIR={} holds no {lib}: run scripts/setup.sh, point DUCKDB_LIB_DIR at a \
             libduckdb 1.5.5, or build with `--features bundled`",
            dir.display()
        );
        std::process::exit(1);
    }
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        // An absolute rpath: the binaries are run from anywhere (tests, scripts, the demo).
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}
