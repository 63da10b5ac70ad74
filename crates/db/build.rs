//! Embeds ../../sql/<migration>/{up,down}.sql and ../../policies/*.sql into
//! the binary, in name order, so `tenantry migrate` needs no files at runtime.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs, io};

fn main() -> io::Result<()> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(io::Error::other)?)
        .join("../..")
        .canonicalize()?;
    let sql = root.join("sql");
    let policies = root.join("policies");
    println!("cargo:rerun-if-changed={}", sql.display());
    println!("cargo:rerun-if-changed={}", policies.display());

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
        println!("cargo:rerun-if-changed={}", up.display());
        println!("cargo:rerun-if-changed={}", down.display());
        writeln!(
            out,
            "    Migration {{ version: {name:?}, up: include_str!({:?}), down: include_str!({:?}) }},",
            up.display(),
            down.display()
        )
        .map_err(io::Error::other)?;
    }
    out.push_str("];\n\npub(crate) static POLICIES: &[Policy] = &[\n");
    for file in sorted_entries(&policies)? {
        if file.extension().is_none_or(|e| e != "sql") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", file.display());
        let name = file_name(&file)?;
        writeln!(
            out,
            "    Policy {{ file: {name:?}, sql: include_str!({:?}) }},",
            file.display()
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
