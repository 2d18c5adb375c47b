//! Every path a language's commands name comes from one of the Debian packages it lists, so
//! that `cargo xtask`, which installs those packages, gives a fresh machine every toolchain.
//!
//! Checked against dpkg's database on this machine: `cargo xtask test` installs every
//! language's packages first, so a path that is missing here, or that dpkg says another
//! package provides, is a mistake in `judge/languages.toml`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::path::Path;
use std::process::Command;

use judge_languages::Languages;

/// The packages that own `path` according to dpkg (`dpkg-query -S`), without architecture
/// qualifiers.
fn owners(path: &str) -> Vec<String> {
    let out =
        Command::new("dpkg-query").args(["-S", path]).output().expect("dpkg-query runs (a Debian host)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("diversion "))
        .filter_map(|l| l.rsplit_once(": ").map(|(pkgs, _)| pkgs.to_owned()))
        .flat_map(|pkgs| {
            pkgs.split(", ").map(|p| p.split(':').next().unwrap_or(p).trim().to_owned()).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_language_names_its_packages() {
    let languages = Languages::load(None).unwrap();
    for def in languages.defs().iter().filter(|d| !d.is_archived && !d.worker_toolchain) {
        assert!(
            !def.paths().is_empty(),
            "language {} names no absolute path: its commands must name their programs by path",
            def.id
        );
        assert!(!def.packages.is_empty(), "language {} names programs but no package provides them", def.id);
    }
}

#[test]
fn every_path_comes_from_one_of_its_languages_packages() {
    let languages = Languages::load(None).unwrap();
    let mut problems = Vec::new();
    for def in languages.defs().iter().filter(|d| !d.is_archived && !d.worker_toolchain) {
        for path in def.paths() {
            if !Path::new(&path).exists() {
                problems.push(format!(
                    "language {}: {path} is not on this machine (`cargo xtask setup --languages all` installs {})",
                    def.id,
                    def.packages.join(" ")
                ));
                continue;
            }
            // The path itself (a symlink such as /usr/bin/go) or what it resolves to (through
            // /etc/alternatives, for example).
            let canonical = std::fs::canonicalize(&path).unwrap().display().to_string();
            let mut found = owners(&path);
            found.extend(owners(&canonical));
            if !found.iter().any(|p| def.packages.contains(p)) {
                problems.push(format!(
                    "language {}: {path} comes from {:?}, none of its packages {:?}",
                    def.id, found, def.packages
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
