//! Running one submission in the sandbox: write the files, compile once with the compile
//! step's own limits, run `number_of_runs` times with the submission's limits (each run from
//! the box as the compile step left it), and reach Judge0's verdict.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use judge_sandbox::{Limits, RunResult, RunSpec, Sandbox, Status as Box, Stdin, Stream};
use judge_wire::{OutputStream, Status};

use crate::archive;
use crate::config::{CompileLimits, Judge0Config};
use crate::db::{Outcome, Submission};
use crate::format;
use crate::languages::Language;

/// Descriptors a program may open.
const OPEN_FILES: u32 = 256;

/// What an execution needs besides the submission.
#[allow(missing_debug_implementations)] // Holds a closure.
pub struct Context<'a> {
    /// The sandbox to take a box from.
    pub sandbox: &'a Sandbox,
    /// Judge0's settings.
    pub judge0: &'a Judge0Config,
    /// The compile step's limits.
    pub compile: &'a CompileLimits,
    /// Set to stop the submission.
    pub cancel: &'a AtomicBool,
    /// Receives output as it is produced: stream, bytes, run number (from 1).
    pub live: &'a (dyn Fn(OutputStream, &[u8], u32) + Sync),
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::ZERO)
}

fn internal(message: impl Into<String>) -> Outcome {
    Outcome { status_id: Status::InternalError.id(), message: Some(message.into()), ..Outcome::default() }
}

fn non_empty(bytes: Vec<u8>) -> Option<Vec<u8>> {
    (!bytes.is_empty()).then_some(bytes)
}

/// The words of a command with nothing a shell would interpret, or `None`. A first word with
/// `=` is a variable assignment (`SBCL_HOME=/usr/lib/sbcl sbcl`), which only a shell performs.
fn plain_words(command: &str) -> Option<Vec<&str>> {
    let plain = command.chars().all(|c| c.is_ascii_alphanumeric() || " _-./=+,:".contains(c));
    let words: Vec<&str> = command.split_whitespace().collect();
    (plain && words.first().is_some_and(|w| !w.contains('='))).then_some(words)
}

/// The command as a run: executed directly when it is plain words (saving a shell's start-up
/// on every run), through `bash -c` otherwise. The environment is a `PATH` and the language's
/// own variables.
fn spec(command: &str, language: &Language, limits: Limits) -> RunSpec {
    let mut spec = match plain_words(command) {
        Some(words) => RunSpec::new(words[0]).args(words[1..].iter().copied()),
        None => RunSpec::new("/bin/bash").args(["-c", command]),
    }
    .limits(limits);
    for (k, v) in &language.def.env {
        spec = spec.env(k.clone(), v.clone());
    }
    spec
}

/// Lines with trailing whitespace removed, without trailing blank lines: Judge0's comparison.
fn normalized(output: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = output
        .split(|b| *b == b'\n')
        .map(|l| {
            let end = l.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
            &l[..end]
        })
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// Judge0's status for a signal.
fn signal_status(signal: i32) -> Status {
    match signal {
        11 => Status::RuntimeErrorSigsegv,
        25 => Status::RuntimeErrorSigxfsz,
        8 => Status::RuntimeErrorSigfpe,
        6 => Status::RuntimeErrorSigabrt,
        _ => Status::RuntimeErrorOther,
    }
}

/// The verdict for a run's result, with isolate's messages; `output_kb` is the output cap.
fn verdict(run: &RunResult, expected: Option<&[u8]>, output_kb: u64) -> (Status, Option<String>) {
    match run.status {
        Box::Ok => match expected {
            Some(exp) if normalized(&run.stdout) != normalized(exp) => (Status::WrongAnswer, None),
            _ => (Status::Accepted, None),
        },
        Box::TimeLimit => (Status::TimeLimitExceeded, Some("Time limit exceeded".into())),
        Box::WallTimeLimit => (Status::TimeLimitExceeded, Some("Time limit exceeded (wall clock)".into())),
        // A closed set of statuses: a memory kill is a runtime error, said in the message.
        Box::MemoryLimit => (Status::RuntimeErrorOther, Some("Memory limit exceeded".into())),
        Box::Signalled => {
            let sig = run.signal.unwrap_or(0);
            let message = if sig == 25 {
                "File size limit exceeded".to_owned()
            } else {
                format!("Caught fatal signal {sig}")
            };
            (signal_status(sig), Some(message))
        }
        Box::NonZeroExit => (
            Status::RuntimeErrorNzec,
            Some(format!("Exited with error status {}", run.exit_code.unwrap_or(0))),
        ),
        // As in Judge0, where output goes to files under `max_file_size`: SIGXFSZ.
        Box::OutputLimit => {
            let which = if run.stdout_truncated { "stdout" } else { "stderr" };
            let message = format!("Output limit exceeded: {which} was cut at {output_kb} KB (max_file_size)");
            (Status::RuntimeErrorSigxfsz, Some(message))
        }
        Box::Cancelled => (Status::InternalError, Some("Cancelled".into())),
        Box::InternalError if run.message.contains("Exec format error") => {
            (Status::ExecFormatError, Some(run.message.clone()))
        }
        Box::InternalError => (Status::InternalError, Some(run.message.clone())),
    }
}

fn compilation_error(output: Vec<u8>) -> Outcome {
    // As in Judge0: the program never ran, so no exit code or signal.
    Outcome {
        status_id: Status::CompilationError.id(),
        compile_output: non_empty(output),
        ..Outcome::default()
    }
}

/// The compile step's limits as the sandbox takes them.
fn compile_limits(c: &CompileLimits) -> Limits {
    Limits {
        cpu_time: secs(c.cpu_time_limit.max(0.001)),
        extra_time: secs(c.cpu_extra_time),
        wall_time: secs(c.wall_time_limit.max(0.001)),
        memory_kb: c.memory_limit.max(1024),
        processes: c.max_processes_and_or_threads.max(1),
        file_size_kb: c.max_file_size,
        open_files: OPEN_FILES,
        stack_kb: c.stack_limit,
        output_kb: c.max_output_size,
        cpu_per_process: false,
        memory_per_process: false,
    }
}

/// Runs a submission to its outcome. Never fails: problems become Internal Error.
pub fn execute(ctx: &Context<'_>, sub: &Submission, language: &Language) -> Outcome {
    let mut lease = match ctx.sandbox.lease() {
        Ok(l) => l,
        Err(e) => return internal(format!("No sandbox available: {e}")),
    };
    let n = &sub.new;
    for (name, contents) in &language.def.files {
        if let Err(e) = lease.write_file(Path::new(name), contents.as_bytes(), false) {
            return internal(format!("Cannot write {name}: {e}"));
        }
    }
    if let Some(file) = &language.def.source_file
        && let Err(e) = lease.write_file(Path::new(file), n.source_code.as_deref().unwrap_or_default(), false)
    {
        return internal(format!("Cannot write the source file: {e}"));
    }
    if let Some(zip) = &n.additional_files {
        let written = archive::extract(zip, ctx.judge0.max_extract_bytes(), |file, data| {
            lease.write_file(&file.path, data, file.executable).map_err(|e| e.to_string())
        });
        if let Err(e) = written {
            return compilation_error(format!("additional_files {e}\n").into_bytes());
        }
    }

    let mut compile_output = None;
    if let Some(compile) = &language.def.compile_cmd {
        let command = compile.replace("%s", n.compiler_options.as_deref().unwrap_or(""));
        let mut compile_spec = spec(&command, language, compile_limits(ctx.compile));
        compile_spec.stderr_to_stdout = true;
        let mut observe = |_: Stream, chunk: &[u8]| (ctx.live)(OutputStream::Compile, chunk, 0);
        let result = match lease.run_controlled(&compile_spec, &mut observe, Some(ctx.cancel)) {
            Ok(r) => r,
            Err(e) => return internal(format!("The compiler could not run: {e}")),
        };
        let output = non_empty(result.stdout.clone());
        match result.status {
            Box::Ok => compile_output = output,
            Box::Cancelled => return internal("Cancelled"),
            Box::InternalError => return internal(result.message),
            other => {
                let mut out = output.unwrap_or_default();
                if matches!(other, Box::TimeLimit | Box::WallTimeLimit) {
                    out.extend_from_slice(b"Compilation time limit exceeded.\n");
                } else if other == Box::MemoryLimit {
                    out.extend_from_slice(b"Compilation memory limit exceeded.\n");
                } else if other == Box::OutputLimit {
                    out.extend_from_slice(b"Compilation output limit exceeded.\n");
                }
                return compilation_error(out);
            }
        }
    }
    // Every run starts from the box as it is now; its files are off the box's memory account.
    if let Err(e) = lease.checkpoint() {
        return match language.def.compile_cmd {
            Some(_) => {
                compilation_error(format!("The compile step left too much in the box: {e}\n").into_bytes())
            }
            None => internal(format!("Cannot prepare the box: {e}")),
        };
    }

    let cpu_time = if n.cpu_time_limit > 0.0 { n.cpu_time_limit } else { ctx.judge0.max_cpu_time_limit };
    let output_kb = u64::try_from(n.max_file_size).unwrap_or(0);
    let limits = Limits {
        cpu_time: secs(cpu_time.max(0.001)),
        extra_time: secs(n.cpu_extra_time),
        wall_time: secs(n.wall_time_limit.max(0.001)),
        memory_kb: u64::try_from(n.memory_limit).unwrap_or(0).max(1024),
        processes: u32::try_from(n.max_processes_and_or_threads).unwrap_or(1).max(1),
        file_size_kb: output_kb,
        open_files: OPEN_FILES,
        stack_kb: u64::try_from(n.stack_limit).unwrap_or(0),
        // Judge0 writes output to files under `max_file_size`: the same cap, per stream.
        output_kb,
        cpu_per_process: n.enable_per_process_and_thread_time_limit,
        memory_per_process: n.enable_per_process_and_thread_memory_limit,
    };
    let command = match &n.command_line_arguments {
        Some(args) => format!("{} {args}", language.def.run_cmd),
        None => language.def.run_cmd.clone(),
    };
    let mut run_spec =
        spec(&command, language, limits).stdin(Stdin::Bytes(n.stdin.clone().unwrap_or_default()));
    run_spec.stderr_to_stdout = n.redirect_stderr_to_stdout;

    let runs = n.number_of_runs.max(1) as u32;
    let (mut cpu, mut wall, mut memory, mut done) = (0.0, 0.0, 0u64, 0u32);
    // The worst run so far (the highest Judge0 status id; the first of equals), with its verdict.
    let mut worst: Option<(RunResult, Status, Option<String>)> = None;
    for run in 1..=runs {
        // Nothing a run leaves in the box (a checkpoint of its progress, say) reaches the next.
        if run > 1
            && let Err(e) = lease.restore()
        {
            return internal(format!("Cannot reset the box between runs: {e}"));
        }
        let mut observe = |stream: Stream, chunk: &[u8]| {
            let s = if stream == Stream::Stdout { OutputStream::Stdout } else { OutputStream::Stderr };
            (ctx.live)(s, chunk, run);
        };
        let result = match lease.run_controlled(&run_spec, &mut observe, Some(ctx.cancel)) {
            Ok(r) => r,
            Err(e) => return internal(format!("The program could not run: {e}")),
        };
        cpu += result.cpu_time.as_secs_f64();
        wall += result.wall_time.as_secs_f64();
        memory += result.memory_kb;
        done += 1;
        let stop = matches!(result.status, Box::Cancelled | Box::InternalError);
        let (status, message) = verdict(&result, n.expected_output.as_deref(), output_kb);
        if worst.as_ref().is_none_or(|(_, w, _)| status.id() > w.id()) {
            worst = Some((result, status, message));
        }
        if stop {
            break;
        }
    }
    let Some((result, status, message)) = worst else { return internal("No run happened") };
    // Averaged over the runs, as Judge0 does.
    let average = f64::from(done);
    Outcome {
        status_id: status.id(),
        stdout: non_empty(result.stdout),
        stderr: non_empty(result.stderr),
        compile_output,
        message,
        exit_code: result.exit_code,
        exit_signal: result.signal,
        time: Some(format::round_ms(cpu / average)),
        wall_time: Some(format::round_ms(wall / average)),
        memory: Some(i32::try_from(memory / u64::from(done)).unwrap_or(i32::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_ignores_trailing_whitespace_and_blank_lines_only() {
        assert_eq!(normalized(b"1 2 \n3\t\n\n\n"), normalized(b"1 2\n3"));
        assert_ne!(normalized(b" 1\n"), normalized(b"1\n"));
        assert_ne!(normalized(b"1\n\n2"), normalized(b"1\n2"));
        assert_eq!(normalized(b"a\r\nb\r\n"), normalized(b"a\nb\n"));
        assert!(normalized(b"\n\n").is_empty());
    }

    #[test]
    fn plain_commands_skip_the_shell_and_others_keep_it() {
        assert_eq!(
            plain_words("/usr/bin/gcc  main.c -o main -lm"),
            Some(vec!["/usr/bin/gcc", "main.c", "-o", "main", "-lm"])
        );
        assert_eq!(plain_words("/usr/bin/python3 script.py"), Some(vec!["/usr/bin/python3", "script.py"]));
        assert_eq!(plain_words("./main 'a b'"), None);
        assert_eq!(plain_words("./main $HOME"), None);
        assert_eq!(plain_words("if [ -f compile ]; then /bin/bash compile; fi"), None);
        assert_eq!(plain_words("   "), None);
        assert_eq!(plain_words("JAVA_OPTS=-Xmx64m /usr/bin/groovyc script.groovy"), None);
    }

    #[test]
    fn signals_map_to_judge0_statuses() {
        assert_eq!(signal_status(11), Status::RuntimeErrorSigsegv);
        assert_eq!(signal_status(25), Status::RuntimeErrorSigxfsz);
        assert_eq!(signal_status(8), Status::RuntimeErrorSigfpe);
        assert_eq!(signal_status(6), Status::RuntimeErrorSigabrt);
        assert_eq!(signal_status(9), Status::RuntimeErrorOther);
    }
}
