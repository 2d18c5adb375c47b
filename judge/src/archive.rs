//! `additional_files`: a zip of files for the box. Checked when a submission is accepted (a
//! Judge0-style 422 names what is wrong) and again when a worker extracts it, so that no archive
//! can make a server, a worker or a box do unbounded work: a bounded number of entries, each a
//! plain relative path of bounded depth and length, and a bounded total of extracted bytes.

use std::borrow::Cow;
use std::io::{Cursor, Read};
use std::path::{Component, Path, PathBuf};

/// Most entries (files and directories) an archive may list.
pub const MAX_ENTRIES: usize = 4096;
/// Most directory levels of an entry's path (`a/b/c` has three).
pub const MAX_DEPTH: usize = 64;
/// Longest entry path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// One file to write into the box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Where, relative to `/box`.
    pub path: PathBuf,
    /// Whether the archive marks it executable.
    pub executable: bool,
}

type Archive<'a> = zip::ZipArchive<Cursor<&'a [u8]>>;

fn open(zip: &[u8]) -> Result<Archive<'_>, String> {
    let archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|e| format!("is not a zip archive: {e}"))?;
    if archive.len() > MAX_ENTRIES {
        return Err(format!("has {} entries, more than {MAX_ENTRIES}", archive.len()));
    }
    Ok(archive)
}

/// The entry's path, if it is a plain relative one within the bounds.
fn checked_path(name: &str) -> Result<PathBuf, String> {
    let shown: Cow<'_, str> = if name.len() > 80 {
        format!("{}…", &name[..name.floor_char_boundary(80)]).into()
    } else {
        name.into()
    };
    if name.len() > MAX_PATH_BYTES {
        return Err(format!("entry `{shown}` has a path longer than {MAX_PATH_BYTES} bytes"));
    }
    let path = Path::new(name.trim_end_matches('/'));
    if path.as_os_str().is_empty() || path.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(format!("entry `{shown}` has an unsafe path"));
    }
    if path.components().count() > MAX_DEPTH {
        return Err(format!("entry `{shown}` is nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(path.to_owned())
}

/// Checks the archive's listing without extracting it: entries, paths, and the sizes they
/// declare against `max_bytes`.
pub fn check(zip: &[u8], max_bytes: u64) -> Result<(), String> {
    let mut archive = open(zip)?;
    let mut declared = 0u64;
    for i in 0..archive.len() {
        let file = archive.by_index_raw(i).map_err(|e| format!("has an unreadable entry: {e}"))?;
        let name = file.name().map_err(|e| format!("has an unreadable entry name: {e}"))?;
        checked_path(&name)?;
        declared = declared.saturating_add(file.size());
    }
    if declared > max_bytes {
        return Err(format!("would extract to more than {} KB", max_bytes / 1024));
    }
    Ok(())
}

/// Extracts the archive's files, handing each to `write` (directories are implied by the
/// files' paths). The limits of [`check`] hold again, and the bytes actually extracted stay
/// within `max_bytes` whatever the entries declare.
pub fn extract(
    zip: &[u8],
    max_bytes: u64,
    mut write: impl FnMut(&File, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let mut archive = open(zip)?;
    let mut budget = max_bytes;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(|e| format!("has an unreadable entry: {e}"))?;
        let name = file.name().map_err(|e| format!("has an unreadable entry name: {e}"))?.into_owned();
        let path = checked_path(&name)?;
        if file.is_dir() {
            continue;
        }
        let mut data = Vec::new();
        let read = file
            .by_ref()
            .take(budget.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| format!("cannot extract `{name}`: {e}"))?;
        if read as u64 > budget {
            return Err(format!("would extract to more than {} KB", max_bytes / 1024));
        }
        budget -= read as u64;
        let executable = file.unix_mode().is_some_and(|m| m & 0o111 != 0);
        write(&File { path, executable }, &data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(0o755);
        for (name, data) in entries {
            w.start_file(*name, options).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn plain_archives_pass_and_extract() {
        let zip = zip_of(&[("compile", b"#!/bin/sh\n"), ("src/main.c", b"int main(){}")]);
        check(&zip, 1024).unwrap();
        let mut seen = Vec::new();
        extract(&zip, 1024, |f, data| {
            seen.push((f.path.display().to_string(), data.len(), f.executable));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![("compile".into(), 10, true), ("src/main.c".into(), 12, true)]);
    }

    #[test]
    fn deep_long_unsafe_and_numerous_entries_are_refused() {
        let deep = format!("{}x", "d/".repeat(16_000));
        let err = check(&zip_of(&[(&deep, b"x")]), 1 << 20).unwrap_err();
        assert!(err.contains("longer than 1024 bytes"), "{err}");
        let deep = format!("{}x", "d/".repeat(MAX_DEPTH));
        let err = check(&zip_of(&[(&deep, b"x")]), 1 << 20).unwrap_err();
        assert!(err.contains("nested deeper than 64 levels"), "{err}");
        let fine = format!("{}x", "d/".repeat(MAX_DEPTH - 1));
        check(&zip_of(&[(&fine, b"x")]), 1 << 20).unwrap();
        for bad in ["../x", "/etc/passwd", "a/../../x", "./"] {
            let err = check(&zip_of(&[(bad, b"x")]), 1 << 20).unwrap_err();
            assert!(err.contains("unsafe path"), "{bad}: {err}");
        }
        let names: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("f{i}")).collect();
        let many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let err = check(&zip_of(&many), 1 << 20).unwrap_err();
        assert!(err.contains("more than 4096"), "{err}");
        let err = check(b"not a zip", 1024).unwrap_err();
        assert!(err.starts_with("is not a zip archive"), "{err}");
    }

    #[test]
    fn extraction_stays_within_its_budget() {
        let zip = zip_of(&[("a", &[0u8; 600]), ("b", &[0u8; 600])]);
        assert!(check(&zip, 1000).unwrap_err().contains("more than 0 KB"));
        let err = extract(&zip, 1000, |_, _| Ok(())).unwrap_err();
        assert!(err.contains("more than"), "{err}");
        extract(&zip, 1200, |_, _| Ok(())).unwrap();
    }
}
