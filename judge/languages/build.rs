//! The built-in languages come from `judge/languages.toml`, outside this package, by
//! `include_str!`. Cargo records such a file by its absolute path, so a build shared by two
//! checkouts (a target directory kept between CI clones) would not see the file change in the
//! other; a path given here is taken relative to this package wherever it is checked out.

fn main() {
    println!("cargo::rerun-if-changed=../languages.toml");
}
