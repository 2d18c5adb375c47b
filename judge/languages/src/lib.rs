//! The judge's languages: `judge/languages.toml` (Judge0's ids and commands, and the Debian
//! packages that provide every program the commands name), with names that carry the versions
//! the workers actually have installed.
//!
//! Its own crate so that `xtask` derives what to install from the same file and the same
//! reading of it as the workers that run the commands: the install list cannot drift from the
//! languages.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde::Deserialize;

/// The built-in language file.
pub const BUILTIN: &str = include_str!("../../languages.toml");

/// One language as the file defines it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageDef {
    /// Judge0's id.
    pub id: i32,
    /// Other ids clients use for the same toolchain.
    #[serde(default)]
    pub aliases: Vec<i32>,
    /// Display name; `{version}` is replaced by the installed version.
    pub name: String,
    /// Command printing the version (run on a worker's host).
    #[serde(default)]
    pub version_cmd: Vec<String>,
    /// Version shown until a worker reports one.
    #[serde(default)]
    pub fallback_version: String,
    /// Whether the language is archived (listed in `/languages/all` only, not usable).
    #[serde(default)]
    pub is_archived: bool,
    /// File the source code is written to; none for multi-file programs.
    pub source_file: Option<String>,
    /// Compile command; `%s` is replaced by the compiler options.
    pub compile_cmd: Option<String>,
    /// Run command; command-line arguments are appended.
    pub run_cmd: String,
    /// Extra environment for compiling and running.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Files written into the box next to the source (name → contents).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// The Debian packages that provide every absolute path the commands name (see
    /// [`LanguageDef::paths`]); what `cargo xtask` installs for this language.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Whether `cargo xtask start-all` installs it by default (the others with
    /// `--languages all`).
    #[serde(default)]
    pub core: bool,
    /// Whether the worker provides the toolchain itself rather than a package (the host's Rust
    /// toolchain, bound at `/opt/rust`): its paths need no package.
    #[serde(default)]
    pub worker_toolchain: bool,
    /// Entries of the host's `/etc` the toolchain reads (configuration files Debian keeps
    /// there), copied into the box's `/etc`.
    #[serde(default)]
    pub etc: Vec<String>,
    /// Host directories outside the system directories (`/usr`, `/lib`, ...) that the toolchain
    /// reads, bound read-only at the same place in the box.
    #[serde(default)]
    pub binds: Vec<String>,
}

impl LanguageDef {
    /// Every absolute path the commands name (programs, and files such as a jar passed to
    /// them): the words of `compile_cmd`, `run_cmd` and `version_cmd` that start with `/`,
    /// after splitting at shell operators, quotes, `=` and `:` (so `VAR=/usr/lib/x` and
    /// `-cp ".:/usr/share/x/*"` count). A trailing `/*` glob names its directory. Paths inside
    /// the box (`/box`, `/tmp`), `/dev`, `/proc` and templated ones (`{rust_sysroot}`) are
    /// left out.
    pub fn paths(&self) -> Vec<String> {
        let commands =
            self.compile_cmd.iter().chain(std::iter::once(&self.run_cmd)).chain(self.version_cmd.first());
        let mut paths: Vec<String> = commands
            .flat_map(|c| c.split(|ch: char| ch.is_whitespace() || ";&|()`'\"=:<>$".contains(ch)))
            .filter(|w| w.starts_with('/') && !w.contains('{'))
            .map(|w| w.strip_suffix("/*").unwrap_or(w).trim_end_matches('/').to_owned())
            .filter(|w| !w.is_empty() && !["/box", "/tmp", "/dev", "/proc"].iter().any(|p| within(w, p)))
            .collect();
        paths.sort_unstable();
        paths.dedup();
        paths
    }

    /// Whether a host where `exists` says which paths are present can run this language:
    /// every path its commands name is there. A worker-provided toolchain is judged by
    /// `worker_toolchain_present` instead.
    pub fn runnable(&self, exists: impl Fn(&str) -> bool, worker_toolchain_present: bool) -> bool {
        if self.is_archived {
            return false;
        }
        if self.worker_toolchain {
            return worker_toolchain_present;
        }
        self.paths().iter().all(|p| exists(p))
    }

    /// This language's id followed by its aliases.
    pub fn ids(&self) -> impl Iterator<Item = i32> + '_ {
        std::iter::once(self.id).chain(self.aliases.iter().copied())
    }
}

/// Whether `path` is `dir` or below it.
fn within(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[derive(Debug, Deserialize)]
struct LanguagesFile {
    language: Vec<LanguageDef>,
}

/// A language as clients see it (under one of its ids).
#[derive(Debug, Clone)]
pub struct Language {
    /// The id the client used.
    pub id: i32,
    /// The display name, with its version.
    pub name: String,
    /// The definition.
    pub def: Arc<LanguageDef>,
}

/// Why a language file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LanguagesError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("invalid language file: {0}")]
    Parse(#[from] toml::de::Error),
    /// Two languages share an id.
    #[error("language id {0} is defined twice")]
    Duplicate(i32),
}

/// All languages, by id and alias.
#[derive(Debug, Clone)]
pub struct Languages {
    defs: Vec<Arc<LanguageDef>>,
    by_id: HashMap<i32, Arc<LanguageDef>>,
    versions: HashMap<i32, String>,
}

impl Languages {
    /// Loads `path`, or the built-in file.
    pub fn load(path: Option<&Path>) -> Result<Self, LanguagesError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|source| LanguagesError::Read { path: p.to_owned(), source })?,
            None => BUILTIN.to_owned(),
        };
        Self::parse(&text)
    }

    /// Parses a language file.
    pub fn parse(text: &str) -> Result<Self, LanguagesError> {
        let file: LanguagesFile = toml::from_str(text)?;
        let mut by_id = HashMap::new();
        let mut defs = Vec::new();
        for def in file.language {
            let def = Arc::new(def);
            for id in def.ids() {
                if by_id.insert(id, def.clone()).is_some() {
                    return Err(LanguagesError::Duplicate(id));
                }
            }
            defs.push(def);
        }
        Ok(Self { defs, by_id, versions: HashMap::new() })
    }

    /// Uses these versions (by canonical id) in names.
    pub fn set_versions(&mut self, versions: HashMap<i32, String>) {
        self.versions = versions;
    }

    /// The language for an id or alias.
    pub fn get(&self, id: i32) -> Option<Language> {
        let def = self.by_id.get(&id)?.clone();
        Some(Language { id, name: self.name_of(&def), def })
    }

    fn name_of(&self, def: &LanguageDef) -> String {
        let version = self.versions.get(&def.id).unwrap_or(&def.fallback_version);
        def.name.replace("{version}", version)
    }

    /// Every language under each of its ids (aliases are listed too: clients refuse ids that
    /// are not), sorted by name, then id, as Judge0 lists them.
    pub fn all(&self) -> Vec<Language> {
        let mut all: Vec<Language> = self
            .defs
            .iter()
            .flat_map(|def| def.ids().map(|id| Language { id, name: self.name_of(def), def: def.clone() }))
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        all
    }

    /// The definitions, in file order.
    pub fn defs(&self) -> &[Arc<LanguageDef>] {
        &self.defs
    }
}

/// The first `digits(.digits)+` in `text`: "Python 3.11.2" → "3.11.2", "go1.19.8" → "1.19.8".
pub fn extract_version(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            let mut end = i;
            let mut dots = 0;
            while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
                if bytes[end] == b'.' {
                    dots += 1;
                }
                end += 1;
            }
            let candidate = text[start..end].trim_end_matches('.');
            if dots > 0 && candidate.contains('.') {
                return Some(candidate.to_owned());
            }
            i = end;
        } else {
            i += 1;
        }
    }
    None
}

/// Runs each language's version command on this host. `{rust_sysroot}` in a command is
/// replaced by `rust_sysroot`.
pub fn detect_versions(languages: &Languages, rust_sysroot: Option<&Path>) -> HashMap<i32, String> {
    let mut versions = HashMap::new();
    for def in languages.defs() {
        let Some((program, args)) = def.version_cmd.split_first() else { continue };
        let program = match rust_sysroot {
            Some(root) => program.replace("{rust_sysroot}", &root.display().to_string()),
            None if program.contains("{rust_sysroot}") => continue,
            None => program.clone(),
        };
        let Ok(out) = Command::new(&program).args(args).env_clear().env("PATH", "/usr/bin:/bin").output()
        else {
            continue;
        };
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if let Some(v) = extract_version(&text) {
            versions.insert(def.id, v);
        }
    }
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_file_has_judge0s_ids_and_aliases() {
        let langs = Languages::load(None).unwrap();
        for (id, prefix) in [
            (50, "C (GCC"),
            (48, "C (GCC"),
            (49, "C (GCC"),
            (54, "C++ (GCC"),
            (52, "C++ (GCC"),
            (53, "C++ (GCC"),
            (62, "Java"),
            (63, "JavaScript"),
            (71, "Python"),
            (60, "Go"),
            (73, "Rust"),
            (74, "TypeScript"),
            (46, "Bash"),
            (43, "Plain Text"),
            (89, "Multi-file program"),
        ] {
            let lang = langs.get(id).unwrap_or_else(|| panic!("language {id}"));
            assert!(lang.name.starts_with(prefix), "{id}: {}", lang.name);
            assert_eq!(lang.id, id);
        }
        assert!(langs.get(999).is_none());
        let all = langs.all();
        for id in [48, 49, 50, 52, 53, 54] {
            assert_eq!(all.iter().filter(|l| l.id == id).count(), 1, "{id} is listed under its own id");
        }
        assert!(all.windows(2).all(|w| (&w[0].name, w[0].id) <= (&w[1].name, w[1].id)));
        let archived: Vec<i32> = all.iter().filter(|l| l.def.is_archived).map(|l| l.id).collect();
        assert_eq!(archived, {
            let mut ids: Vec<i32> = (1..=42).collect();
            ids.sort_by_key(|id| langs.get(*id).map(|l| l.name));
            ids
        });
    }

    #[test]
    fn versions_fill_names() {
        let mut langs = Languages::load(None).unwrap();
        assert_eq!(langs.get(71).unwrap().name, "Python (3.11)");
        langs.set_versions(HashMap::from([(71, "3.11.2".to_owned())]));
        assert_eq!(langs.get(71).unwrap().name, "Python (3.11.2)");
    }

    #[test]
    fn versions_are_found_in_tool_output() {
        assert_eq!(extract_version("Python 3.11.2\n").as_deref(), Some("3.11.2"));
        assert_eq!(extract_version("go version go1.19.8 linux/amd64").as_deref(), Some("1.19.8"));
        assert_eq!(extract_version("v20.20.2").as_deref(), Some("20.20.2"));
        assert_eq!(extract_version("javac 17.0.15").as_deref(), Some("17.0.15"));
        assert_eq!(extract_version("rustc 1.95.0 (59807616e 2026-04-14)").as_deref(), Some("1.95.0"));
        assert_eq!(extract_version("GNU bash, version 5.2.15(1)-release").as_deref(), Some("5.2.15"));
        assert_eq!(extract_version("no version here 7"), None);
    }

    #[test]
    fn paths_are_the_absolute_words_of_the_commands() {
        let text = r#"
[[language]]
id = 1
name = "x"
version_cmd = ["/usr/bin/x", "--version"]
compile_cmd = "PATH=\"/usr/lib/x/bin:$PATH\" /usr/bin/xc %s -I/usr/include/no main.x && /bin/cat a|/usr/bin/y"
run_cmd = "SDK=/usr/lib/sdk /usr/bin/java -cp \".:/usr/share/groovy/lib/*\" -jar /usr/share/java/z.jar /box/in /tmp/t ./main `/usr/bin/cfg --flags` /dev/null"
"#;
        let langs = Languages::parse(text).unwrap();
        assert_eq!(
            langs.defs()[0].paths(),
            [
                "/bin/cat",
                "/usr/bin/cfg",
                "/usr/bin/java",
                "/usr/bin/x",
                "/usr/bin/xc",
                "/usr/bin/y",
                "/usr/lib/sdk",
                "/usr/lib/x/bin",
                "/usr/share/groovy/lib",
                "/usr/share/java/z.jar",
            ]
        );
        let def = &langs.defs()[0];
        assert!(def.runnable(|_| true, false));
        assert!(!def.runnable(|p| p != "/usr/share/java/z.jar", true));
    }

    #[test]
    fn a_worker_toolchain_needs_no_path_and_archived_languages_never_run() {
        let langs = Languages::load(None).unwrap();
        let rust = langs.get(73).unwrap();
        assert!(rust.def.worker_toolchain);
        assert!(rust.def.runnable(|_| false, true));
        assert!(!rust.def.runnable(|_| true, false));
        let archived = langs.get(1).unwrap();
        assert!(archived.def.is_archived);
        assert!(!archived.def.runnable(|_| true, true));
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let text = "[[language]]\nid = 1\nname = \"a\"\nrun_cmd = \"x\"\n[[language]]\nid = 2\naliases = [1]\nname = \"b\"\nrun_cmd = \"y\"\n";
        assert!(matches!(Languages::parse(text), Err(LanguagesError::Duplicate(1))));
    }
}
