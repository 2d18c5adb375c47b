//! Every language the judge offers compiles and runs inside the sandbox with all limits on:
//! the compiler runs in the box (as the judge will run it), then the program reads stdin.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use judge_sandbox::{Limits, RunSpec, Sandbox, Status, Stdin};

struct Language {
    name: &'static str,
    file: &'static str,
    source: &'static str,
    /// Compile command, if the language compiles.
    compile: Option<&'static [&'static str]>,
    run: &'static [&'static str],
}

const LANGUAGES: &[Language] = &[
    Language {
        name: "C (gcc)",
        file: "main.c",
        source: "#include <stdio.h>\nint main(void) { char n[64]; scanf(\"%63s\", n); printf(\"hello, %s\\n\", n); return 0; }\n",
        compile: Some(&["gcc", "-O2", "-o", "main", "main.c"]),
        run: &["./main"],
    },
    Language {
        name: "C++ (g++)",
        file: "main.cpp",
        source: "#include <iostream>\n#include <string>\nint main() { std::string n; std::cin >> n; std::cout << \"hello, \" << n << std::endl; }\n",
        compile: Some(&["g++", "-O2", "-o", "main", "main.cpp"]),
        run: &["./main"],
    },
    Language {
        name: "Java",
        file: "Main.java",
        source: "import java.util.Scanner;\npublic class Main { public static void main(String[] a) { System.out.println(\"hello, \" + new Scanner(System.in).next()); } }\n",
        compile: Some(&["javac", "Main.java"]),
        run: &["java", "-Xss64m", "Main"],
    },
    Language {
        name: "Python 3",
        file: "main.py",
        source: "print('hello, ' + input().strip())\n",
        compile: None,
        run: &["python3", "main.py"],
    },
    Language {
        name: "JavaScript (Node.js)",
        file: "main.js",
        source: "const n = require('fs').readFileSync(0, 'utf8').trim(); console.log(`hello, ${n}`);\n",
        compile: None,
        run: &["node", "main.js"],
    },
    Language {
        name: "Go",
        file: "main.go",
        source: "package main\nimport \"fmt\"\nfunc main() { var n string; fmt.Scan(&n); fmt.Printf(\"hello, %s\\n\", n) }\n",
        compile: Some(&["go", "build", "-o", "main", "main.go"]),
        run: &["./main"],
    },
    Language {
        name: "Rust",
        file: "main.rs",
        source: "use std::io::Read;\nfn main() { let mut n = String::new(); std::io::stdin().read_to_string(&mut n).unwrap(); println!(\"hello, {}\", n.trim()); }\n",
        compile: Some(&["/opt/rust/bin/rustc", "-O", "-o", "main", "main.rs"]),
        run: &["./main"],
    },
];

/// The host's Rust toolchain, shown read-only at /opt/rust inside.
fn rust_sysroot() -> PathBuf {
    let out = Command::new("rustc").args(["--print", "sysroot"]).output().expect("rustc on the host");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn sandbox() -> &'static Sandbox {
    support::sandbox_with(|config| {
        config.binds.push(support::bind(&rust_sysroot(), "/opt/rust"));
    })
}

fn compile_limits() -> Limits {
    Limits {
        cpu_time: Duration::from_secs(30),
        wall_time: Duration::from_secs(60),
        memory_kb: 1024 * 1024,
        processes: 256,
        file_size_kb: 64 * 1024,
        ..Limits::default()
    }
}

fn run_limits() -> Limits {
    Limits { memory_kb: 512 * 1024, processes: 128, ..Limits::default() }
}

fn spec(argv: &[&str], limits: Limits) -> RunSpec {
    RunSpec::new(argv[0])
        .args(argv[1..].iter().copied())
        .limits(limits)
        // Go and others want a home and a cache; /tmp is private to the run.
        .env("HOME", "/tmp")
        .env("GOCACHE", "/tmp/go-cache")
        .env("GOPATH", "/tmp/go")
}

fn check(language: &Language) -> Result<(), String> {
    let mut lease = sandbox().lease().map_err(|e| e.to_string())?;
    lease
        .write_file(Path::new(language.file), language.source.as_bytes(), false)
        .map_err(|e| e.to_string())?;
    if let Some(compile) = language.compile {
        let result = lease.run(&spec(compile, compile_limits())).map_err(|e| e.to_string())?;
        if result.status != Status::Ok {
            return Err(format!(
                "compile: {:?} {}\n{}{}",
                result.status,
                result.message,
                String::from_utf8_lossy(&result.stdout),
                String::from_utf8_lossy(&result.stderr)
            ));
        }
    }
    let run = spec(language.run, run_limits()).stdin(Stdin::Bytes(b"verdict\n".to_vec()));
    let result = lease.run(&run).map_err(|e| e.to_string())?;
    if result.status != Status::Ok || result.stdout != b"hello, verdict\n" {
        return Err(format!(
            "run: {:?} {}\nstdout {:?}\nstderr {}",
            result.status,
            result.message,
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    if result.memory_kb == 0 || result.cpu_time.is_zero() {
        return Err(format!("run: no measurements: {} KiB, {:?}", result.memory_kb, result.cpu_time));
    }
    Ok(())
}

#[test]
fn every_language_compiles_and_runs_in_the_sandbox() {
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = LANGUAGES
            .iter()
            .map(|language| s.spawn(move || check(language).map_err(|e| format!("{}: {e}", language.name))))
            .collect();
        handles.into_iter().filter_map(|h| h.join().unwrap().err()).collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_compile_error_is_a_non_zero_exit_with_the_compiler_output() {
    let mut lease = sandbox().lease().unwrap();
    lease.write_file(Path::new("bad.c"), b"int main(void) { return missing; }\n", false).unwrap();
    let result = support::run(&mut lease, &spec(&["gcc", "-o", "bad", "bad.c"], compile_limits()));
    assert_eq!(result.status, Status::NonZeroExit);
    assert!(String::from_utf8_lossy(&result.stderr).contains("missing"), "{}", result.message);
}
