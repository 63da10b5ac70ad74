//! Embeds ../../sql/<migration>/{up,down}.sql and ../../policies/*.sql into
//! the binary, in name order, so `tenantry migrate` needs no files at runtime.
//!
//! The SQL goes in as string literals and the watched paths are relative to
//! this package: with a target directory shared between checkouts (CI keeps
//! one outside the clone), absolute paths would let one checkout's build
//! reuse another checkout's SQL.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs, io};

fn main() -> io::Result<()> {
    let package = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(io::Error::other)?);
    let sql = package.join("../../sql");
    let policies = package.join("../../policies");
    // Relative to the package: cargo resolves them in whichever checkout builds.
    println!("cargo:rerun-if-changed=../../sql");
    println!("cargo:rerun-if-changed=../../policies");

    let mut out = String::from("pub(crate) static MIGRATIONS: &[Migration] = &[\n");
    for dir in sorted_entries(&sql)? {
        if !dir.is_dir() {
            continue;
        }
        let name = file_name(&dir)?;
        let up = dir.join("up.sql");
        let down = dir.join("down.sql");
        if !up.is_file() || !down.is_file() {
            return Err(io::Error::other(format!(
                "{name}: needs up.sql and down.sql"
            )));
        }
        writeln!(
            out,
            "    Migration {{ version: {name:?}, up: {:?}, down: {:?} }},",
            fs::read_to_string(&up)?,
            fs::read_to_string(&down)?
        )
        .map_err(io::Error::other)?;
    }
    out.push_str("];\n\npub(crate) static POLICIES: &[Policy] = &[\n");
    for file in sorted_entries(&policies)? {
        if file.extension().is_none_or(|e| e != "sql") {
            continue;
        }
        let name = file_name(&file)?;
        writeln!(
            out,
            "    Policy {{ file: {name:?}, sql: {:?} }},",
            fs::read_to_string(&file)?
        )
        .map_err(io::Error::other)?;
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var("OUT_DIR").map_err(io::Error::other)?).join("embedded.rs");
    fs::write(dest, out)
}

fn sorted_entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut entries = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> io::Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| io::Error::other(format!("non-UTF-8 path {}", path.display())))
}
