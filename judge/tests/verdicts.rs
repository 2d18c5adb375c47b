//! The verdicts beyond the language matrix (`languages.rs`, where every language reaches
//! Accepted, Wrong Answer, Compilation Error, Runtime Error and Time Limit Exceeded): the
//! signals and the memory limit in the core languages, Plain Text, the wall-clock limit, the
//! multi-file program and the options. All cases are submitted at once to two workers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Cluster, Expected, Options};

struct Case {
    language: i32,
    name: &'static str,
    source: &'static str,
    stdin: Option<&'static str>,
    expected_output: Option<&'static str>,
    /// Extra submission fields (limits).
    extra: fn() -> Value,
    status: i32,
    stdout: Option<&'static str>,
    message: Option<&'static str>,
}

fn none() -> Value {
    json!({})
}
fn small() -> Value {
    json!({"memory_limit": 64000})
}

const AC: i32 = 3;
const WA: i32 = 4;
const TLE: i32 = 5;
const SEGV: i32 = 7;
const FPE: i32 = 9;
const ABRT: i32 = 10;
const NZEC: i32 = 11;
const OTHER: i32 = 12;

macro_rules! case {
    ($lang:expr, $name:expr, $src:expr, $status:expr) => {
        Case {
            language: $lang,
            name: $name,
            source: $src,
            stdin: None,
            expected_output: None,
            extra: none,
            status: $status,
            stdout: None,
            message: None,
        }
    };
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    v.push(Case {
        stdout: Some("plain\n"),
        expected_output: Some("plain  \n\n"),
        ..case!(43, "plain text, trailing whitespace ignored", "plain\n", AC)
    });
    v.push(Case {
        expected_output: Some(" plain"),
        ..case!(43, "plain text, leading whitespace counts", "plain\n", WA)
    });

    // Wall-clock time: the CPU limit cannot hit a sleeping program.
    v.push(Case {
        extra: || json!({"wall_time_limit": 1}),
        message: Some("Time limit exceeded (wall clock)"),
        ..case!(71, "wall time limit", "import time; time.sleep(30)", TLE)
    });

    // Runtime errors: an exception (non-zero exit and a status of each language: languages.rs).
    v.push(case!(
        62,
        "uncaught exception",
        "public class Main{public static void main(String[] a){throw new RuntimeException(\"x\");}}",
        NZEC
    ));

    // Runtime errors: signals.
    for (lang, name, src, status) in [
        (50, "SIGSEGV", "int main(void){volatile int *p=0;*p=1;return 0;}", SEGV),
        (54, "SIGABRT", "#include <cstdlib>\nint main(){std::abort();}", ABRT),
        // Not 1/z: compilers turn that into a comparison, with no division to trap.
        (50, "SIGFPE", "int main(void){volatile int z=0;volatile int r=10/z;return r;}", FPE),
        (71, "SIGSEGV", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", SEGV),
        (63, "SIGFPE", "process.kill(process.pid, 'SIGFPE')", FPE),
        (73, "SIGABRT", "fn main(){std::process::abort()}", ABRT),
        (
            60,
            "SIGKILL",
            "package main\nimport \"syscall\"\nfunc main(){syscall.Kill(syscall.Getpid(), syscall.SIGKILL)}",
            OTHER,
        ),
        (46, "SIGSEGV", "kill -SEGV $$", SEGV),
    ] {
        v.push(Case { name, ..case!(lang, name, src, status) });
    }

    // Memory: the kill is a runtime error that says so.
    for (lang, src) in [
        (
            50,
            "#include <stdlib.h>\n#include <string.h>\nint main(void){for(;;){char*p=malloc(1<<20);if(!p)return 3;memset(p,1,1<<20);}}",
        ),
        (
            54,
            "#include <vector>\nint main(){std::vector<std::vector<char>> v;for(;;){v.emplace_back(1<<20,'x');}}",
        ),
        (
            62,
            "public class Main{public static void main(String[] a){java.util.List<long[]> l=new java.util.ArrayList<>();while(true){long[] b=new long[1<<17];java.util.Arrays.fill(b,1);l.add(b);}}}",
        ),
        (63, "const a=[];for(;;){a.push(Buffer.alloc(1<<20,1));}"),
        (71, "a = bytearray(300 << 20)"),
        (
            60,
            "package main\nfunc main(){var l [][]byte\nfor{b:=make([]byte,1<<20)\nfor i:=range b{b[i]=1}\nl=append(l,b)}}",
        ),
        (73, "fn main(){let mut v=Vec::new();loop{v.push(vec![1u8;1<<20]);}}"),
    ] {
        v.push(Case {
            extra: small,
            message: Some("Memory limit exceeded"),
            ..case!(lang, "memory limit", src, OTHER)
        });
    }
    v
}

/// A zip with `compile` and `run` scripts and a source file, for the multi-file language.
fn project_zip() -> String {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        for (name, body) in [
            ("compile", "gcc -o prog main.c\n"),
            ("run", "./prog \"$@\"\n"),
            ("main.c", "#include <stdio.h>\nint main(void){puts(\"multi-file\");return 0;}\n"),
        ] {
            zip.start_file(name, opts).unwrap();
            zip.write_all(body.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }
    verdict_base64(buf.get_ref())
}

fn verdict_base64(bytes: &[u8]) -> String {
    judge::format::base64(bytes)
}

#[test]
fn signals_memory_plain_text_and_wall_time() {
    let cluster = Cluster::start(Options::default());
    let expected: Vec<Expected> = cases()
        .into_iter()
        .map(|case| {
            let mut body = json!({"language_id": case.language, "source_code": case.source});
            if let Some(s) = case.stdin {
                body["stdin"] = json!(s);
            }
            if let Some(e) = case.expected_output {
                body["expected_output"] = json!(e);
            }
            if let (Value::Object(b), Value::Object(extra)) = (&mut body, (case.extra)()) {
                b.extend(extra);
            }
            Expected {
                label: format!("language {} {}", case.language, case.name),
                body,
                status: case.status,
                stdout: case.stdout.map(str::to_owned),
                message: case.message.map(str::to_owned),
            }
        })
        .collect();
    cluster.judge_all("", &expected, Duration::from_secs(240));
}

#[test]
fn multi_file_programs_compile_and_run_from_their_zip() {
    let cluster = Cluster::start(Options { servers: 1, workers: 1, ..Options::default() });
    let done = cluster.run(&json!({"language_id": 89, "additional_files": project_zip()}), "");
    assert_eq!(
        (done["status"]["id"].clone(), done["stdout"].clone()),
        (json!(3), json!("multi-file\n")),
        "{done}"
    );
    // additional_files also come with ordinary languages: the program reads them from its box.
    let done = cluster.run(
        &json!({"language_id": 71, "source_code": "print(open('main.c').read().splitlines()[1])", "additional_files": project_zip()}),
        "",
    );
    assert_eq!(done["stdout"], "int main(void){puts(\"multi-file\");return 0;}\n", "{done}");
}

#[test]
fn number_of_runs_averages_and_options_reach_the_compiler_and_the_program() {
    let cluster = Cluster::start(Options { servers: 1, workers: 1, ..Options::default() });
    let done = cluster.run(
        &json!({
            "language_id": 50,
            "source_code": "#include <stdio.h>\nint main(int c,char**v){printf(\"%d %s %d\\n\",c,v[c-1],VALUE);return 0;}",
            "compiler_options": "-DVALUE=42 -O2",
            "command_line_arguments": "first second",
            "number_of_runs": 3,
        }),
        "fields=stdout,status,time,wall_time,memory,number_of_runs",
    );
    assert_eq!(done["stdout"], "3 second 42\n", "{done}");
    assert_eq!(done["number_of_runs"], 3);
    assert!(done["time"].as_str().is_some() && done["memory"].as_i64().is_some_and(|m| m > 0), "{done}");
    let done = cluster.run(
        &json!({
            "language_id": 71,
            "source_code": "import sys\nprint('out', flush=True)\nprint('err', file=sys.stderr)",
            "redirect_stderr_to_stdout": true,
        }),
        "",
    );
    assert_eq!(
        (done["stdout"].clone(), done["stderr"].clone()),
        (json!("out\nerr\n"), Value::Null),
        "{done}"
    );
    // (Python ignores SIGXFSZ and gets an error instead, so the writer is C.)
    let done = cluster.run(
        &json!({
            "language_id": 50,
            "source_code": "#include <stdio.h>\nint main(void){FILE*f=fopen(\"f\",\"w\");for(int i=0;i<200000;i++)fputc('x',f);fclose(f);return 0;}",
            "max_file_size": 100,
        }),
        "",
    );
    assert_eq!(done["status"]["id"], 8, "SIGXFSZ: {done}");
}

/// The JDK's archive of its own classes (class-data sharing) is mapped in boxes too: a JVM
/// starts from it instead of loading and verifying those classes (`bench judge` shows the gain).
#[test]
fn java_starts_from_the_jdks_class_data_archive() {
    let cluster = Cluster::start(Options { servers: 1, workers: 1, ..Options::default() });
    let done = cluster.run(
        &json!({
            "language_id": 62,
            "source_code": "public class Main { public static void main(String[] a) { System.out.println(System.getProperty(\"java.vm.info\")); } }",
        }),
        "",
    );
    assert_eq!(done["status"]["id"], 3, "{done}");
    assert!(done["stdout"].as_str().is_some_and(|s| s.contains("sharing")), "{done}");
}
