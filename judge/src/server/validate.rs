//! Turning request parameters into a valid submission, with Judge0's rules, defaults and
//! messages.

use crate::archive;
use crate::config::Judge0Config;
use crate::db::NewSubmission;
use crate::format;
use crate::languages::{Language, Languages};

use super::error::FieldErrors;
use super::params::{Cast, Params};

/// Id of Judge0's multi-file program language (a zip with `compile` and `run`).
pub const MULTI_FILE: i32 = 89;
/// Longest `compiler_options` and `command_line_arguments`.
const MAX_ARGUMENT_CHARS: usize = 512;

/// Judge0's model checks a submission in this order, and its answer lists fields in the order
/// their first message was found: `{"source_code": [..], "language_id": [..]}`, never the other
/// way round. What the request itself lacks (a blank source) comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Input,
    AdditionalFilesPresence,
    LanguagePresence,
    NumberOfRuns,
    CpuTimeLimit,
    CpuExtraTime,
    WallTimeLimit,
    MemoryLimit,
    StackLimit,
    MaxProcesses,
    PerProcessTime,
    PerProcessMemory,
    MaxFileSize,
    CompilerOptionsLength,
    CommandLineArgumentsLength,
    LanguageExistence,
    CompilerOptionsAllowed,
    CommandLineArgumentsAllowed,
    CallbackAllowed,
    AdditionalFilesAllowed,
    AdditionalFilesContent,
    NetworkAllowed,
}

/// Messages as they are found, put in Judge0's order at the end.
#[derive(Debug, Default)]
struct Found(Vec<(Step, &'static str, String)>);

impl Found {
    fn add(&mut self, step: Step, field: &'static str, message: impl Into<String>) {
        self.0.push((step, field, message.into()));
    }

    fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(_, f, _)| *f == field)
    }

    fn into_errors(mut self) -> FieldErrors {
        self.0.sort_by_key(|(step, _, _)| *step); // Stable: a step's messages keep their order.
        let mut errors = FieldErrors::default();
        for (_, field, message) in self.0 {
            errors.add(field, message);
        }
        errors
    }
}

/// Reads a text field: raw UTF-8, or base64 when the request says so (decoded as Judge0
/// decodes it, which refuses nothing). Empty is absent.
fn text(p: &Params, key: &'static str, base64: bool) -> Option<Vec<u8>> {
    let raw = p.string(key)?;
    let bytes = if base64 { format::unbase64(&raw) } else { raw.into_bytes() };
    (!bytes.is_empty()).then_some(bytes)
}

/// Blank as Rails sees it: absent, empty or only whitespace.
fn is_blank(bytes: Option<&[u8]>) -> bool {
    bytes.is_none_or(|b| b.iter().all(u8::is_ascii_whitespace))
}

/// The smallest value a limit takes, and how Judge0 words going under it.
#[derive(Debug, Clone, Copy)]
enum Min {
    /// `greater_than_or_equal_to: n`.
    AtLeast(u32),
    /// `greater_than: 0` on a count: at least 1.
    Positive,
}

/// A number in `min..=max`, or the default. Maxima are shown as Judge0 shows its settings:
/// floats with a decimal point (`15.0`), integers without.
#[allow(clippy::too_many_arguments)]
fn bounded(
    p: &Params,
    key: &'static str,
    step: Step,
    default: f64,
    min: Min,
    max: f64,
    integer: bool,
    found: &mut Found,
) -> f64 {
    match p.number(key) {
        Err(Cast::NotANumber) => {
            found.add(step, key, "is not a number");
            default
        }
        Ok(None) => default,
        Ok(Some(v)) => {
            match min {
                Min::AtLeast(m) if v < f64::from(m) => {
                    found.add(step, key, format!("must be greater than or equal to {m}"))
                }
                Min::Positive if v < 1.0 => found.add(step, key, "must be greater than 0"),
                _ => {}
            }
            if v > max {
                let shown = if integer { format!("{}", max as i64) } else { format::decimal(max) };
                found.add(step, key, format!("must be less than or equal to {shown}"));
            }
            if integer { v.trunc() } else { v }
        }
    }
}

/// Characters allowed in compiler options: enough for flags and paths, nothing a shell acts on.
fn safe_compiler_options(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || " _-+=.,:/".contains(c))
}

fn is_http_url(s: &str) -> bool {
    let rest = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.contains(char::is_whitespace)
    })
}

/// `language_id` as Rails casts it to an integer: a number's integer part, a string's leading
/// integer (`"71"`, `" 71abc"` → 71; `"abc"` → 0). `None` when absent or blank.
fn language_id(p: &Params) -> Option<i32> {
    match p.get("language_id")? {
        serde_json::Value::Bool(b) => Some(i32::from(*b)),
        serde_json::Value::String(s) if s.trim().is_empty() => None,
        serde_json::Value::String(s) => Some(super::params::ruby_to_i(s)),
        serde_json::Value::Number(_) => p.number("language_id").ok().flatten().map(|v| v as i32),
        _ => None, // Rails keeps only scalar parameters.
    }
}

/// Validates one submission's parameters and fills in defaults.
pub fn new_submission(
    p: &Params,
    base64: bool,
    cfg: &Judge0Config,
    languages: &Languages,
) -> Result<NewSubmission, FieldErrors> {
    let mut found = Found::default();

    // The language: its presence now, its existence where Judge0 checks it (later).
    let requested = language_id(p);
    let language: Option<Language> = requested.and_then(|id| languages.get(id));
    match (requested, &language) {
        (None, _) => {
            found.add(Step::LanguagePresence, "language_id", "can't be blank");
            // Judge0 looks the language up all the same, and says so with an empty id.
            found.add(Step::LanguageExistence, "language_id", "language with id  doesn't exist");
        }
        (Some(id), None) => {
            found.add(Step::LanguageExistence, "language_id", format!("language with id {id} doesn't exist"))
        }
        (Some(id), Some(l)) if l.def.is_archived => found.add(
            Step::LanguageExistence,
            "language_id",
            format!("language with id {id} is archived and cannot be used anymore"),
        ),
        (Some(_), Some(_)) => {}
    }
    let usable = language.as_ref().filter(|l| !l.def.is_archived);
    let is_project = language.as_ref().is_some_and(|l| l.def.id == MULTI_FILE);

    let source_code = text(p, "source_code", base64);
    match (is_project, is_blank(source_code.as_deref())) {
        (false, true) => found.add(Step::Input, "source_code", "can't be blank"),
        (true, false) => found.add(Step::Input, "source_code", "must be blank"),
        _ => {}
    }
    let stdin = text(p, "stdin", base64);
    let expected_output = text(p, "expected_output", base64);

    let compiler_options = p.string("compiler_options").filter(|s| !s.is_empty());
    if let Some(opts) = &compiler_options {
        let step = Step::CompilerOptionsAllowed;
        if opts.chars().count() > MAX_ARGUMENT_CHARS {
            let message = format!("is too long (maximum is {MAX_ARGUMENT_CHARS} characters)");
            found.add(Step::CompilerOptionsLength, "compiler_options", message);
        }
        let allowed = &cfg.allowed_languages_for_compile_options;
        if opts.trim().is_empty() {
            // Blank: Judge0 does not look further.
        } else if !cfg.enable_compiler_options {
            found.add(step, "compiler_options", "setting compiler options is not allowed");
        } else if language.as_ref().is_some_and(|l| l.def.compile_cmd.is_none()) {
            let message = "setting compiler options is only allowed for compiled languages";
            found.add(step, "compiler_options", message);
        } else if let Some(l) = &language
            && !allowed.allows(l.def.id, &l.name)
            && !allowed.allows(l.id, &l.name)
        {
            let message = format!("setting compiler options is only allowed for {}", allowed.describe());
            found.add(step, "compiler_options", message);
        }
        if !safe_compiler_options(opts) {
            found.add(step, "compiler_options", "compiler options contain characters that are not allowed");
        }
    }
    let command_line_arguments = p.string("command_line_arguments").filter(|s| !s.is_empty());
    if let Some(args) = &command_line_arguments {
        if args.chars().count() > MAX_ARGUMENT_CHARS {
            let message = format!("is too long (maximum is {MAX_ARGUMENT_CHARS} characters)");
            found.add(Step::CommandLineArgumentsLength, "command_line_arguments", message);
        }
        if !cfg.enable_command_line_arguments && !args.trim().is_empty() {
            let message = "setting command line arguments is not allowed";
            found.add(Step::CommandLineArgumentsAllowed, "command_line_arguments", message);
        }
    }

    let f = &mut found;
    let number_of_runs = bounded(
        p,
        "number_of_runs",
        Step::NumberOfRuns,
        cfg.number_of_runs as f64,
        Min::Positive,
        cfg.max_number_of_runs as f64,
        true,
        f,
    );
    let cpu_time_limit = bounded(
        p,
        "cpu_time_limit",
        Step::CpuTimeLimit,
        cfg.cpu_time_limit,
        Min::AtLeast(0),
        cfg.max_cpu_time_limit,
        false,
        f,
    );
    let cpu_extra_time = bounded(
        p,
        "cpu_extra_time",
        Step::CpuExtraTime,
        cfg.cpu_extra_time,
        Min::AtLeast(0),
        cfg.max_cpu_extra_time,
        false,
        f,
    );
    let wall_time_limit = bounded(
        p,
        "wall_time_limit",
        Step::WallTimeLimit,
        cfg.wall_time_limit,
        Min::AtLeast(1),
        cfg.max_wall_time_limit,
        false,
        f,
    );
    let memory_limit = bounded(
        p,
        "memory_limit",
        Step::MemoryLimit,
        cfg.memory_limit as f64,
        Min::AtLeast(2048),
        cfg.max_memory_limit as f64,
        true,
        f,
    );
    let stack_limit = bounded(
        p,
        "stack_limit",
        Step::StackLimit,
        cfg.stack_limit as f64,
        Min::AtLeast(0),
        cfg.max_stack_limit as f64,
        true,
        f,
    );
    let max_processes = bounded(
        p,
        "max_processes_and_or_threads",
        Step::MaxProcesses,
        cfg.max_processes_and_or_threads as f64,
        Min::Positive,
        cfg.max_max_processes_and_or_threads as f64,
        true,
        f,
    );
    let max_file_size = bounded(
        p,
        "max_file_size",
        Step::MaxFileSize,
        cfg.max_file_size as f64,
        Min::AtLeast(0),
        cfg.max_max_file_size as f64,
        true,
        f,
    );

    let per_process_time = p
        .boolean("enable_per_process_and_thread_time_limit")
        .unwrap_or(cfg.enable_per_process_and_thread_time_limit);
    if per_process_time && !cfg.allow_enable_per_process_and_thread_time_limit {
        let field = "enable_per_process_and_thread_time_limit";
        found.add(Step::PerProcessTime, field, "this option cannot be enabled");
    }
    let per_process_memory = p
        .boolean("enable_per_process_and_thread_memory_limit")
        .unwrap_or(cfg.enable_per_process_and_thread_memory_limit);
    if per_process_memory && !cfg.allow_enable_per_process_and_thread_memory_limit {
        let field = "enable_per_process_and_thread_memory_limit";
        found.add(Step::PerProcessMemory, field, "this option cannot be enabled");
    }
    let enable_network = p.boolean("enable_network").unwrap_or(cfg.enable_network);
    if enable_network && !cfg.allow_enable_network {
        found.add(Step::NetworkAllowed, "enable_network", "enabling network is not allowed");
    }
    let redirect_stderr_to_stdout =
        p.boolean("redirect_stderr_to_stdout").unwrap_or(cfg.redirect_stderr_to_stdout);

    let callback_url = p.string("callback_url").filter(|s| !s.trim().is_empty());
    if let Some(url) = &callback_url {
        if !cfg.enable_callbacks {
            found.add(Step::CallbackAllowed, "callback_url", "setting callback is not allowed");
        } else if !is_http_url(url) {
            found.add(Step::CallbackAllowed, "callback_url", "is not a valid URL");
        }
    }

    // Always base64, whatever `base64_encoded` says: it is a zip. Judge0 decodes before it
    // validates, so what decodes to nothing is no files at all, even where files are refused.
    let additional_files =
        p.string("additional_files").map(|raw| format::unbase64(&raw)).filter(|b| !is_blank(Some(b)));
    let additional_files = match additional_files {
        Some(_) if !cfg.enable_additional_files => {
            let message = "setting additional files is not allowed";
            found.add(Step::AdditionalFilesAllowed, "additional_files", message);
            None
        }
        Some(bytes) => {
            if let Err(why) = archive::check(&bytes, cfg.max_extract_bytes()) {
                found.add(Step::AdditionalFilesContent, "additional_files", why);
            }
            Some(bytes)
        }
        None => None,
    };
    if is_project && additional_files.is_none() && !found.has("additional_files") {
        found.add(Step::AdditionalFilesPresence, "additional_files", "can't be blank");
    }

    let Some(language) = usable.filter(|_| found.0.is_empty()) else {
        return Err(found.into_errors());
    };
    Ok(NewSubmission {
        source_code,
        language_id: language.id,
        compiler_options,
        command_line_arguments,
        stdin,
        expected_output,
        number_of_runs: number_of_runs as i32,
        cpu_time_limit,
        cpu_extra_time,
        wall_time_limit,
        memory_limit: memory_limit as i32,
        stack_limit: stack_limit as i32,
        max_processes_and_or_threads: max_processes as i32,
        enable_per_process_and_thread_time_limit: per_process_time,
        enable_per_process_and_thread_memory_limit: per_process_memory,
        max_file_size: max_file_size as i32,
        redirect_stderr_to_stdout,
        callback_url,
        additional_files,
        enable_network,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn cfg() -> Judge0Config {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            c: Judge0Config,
        }
        Wrap::parse_from(["x"]).c
    }

    fn params(json: &str) -> Params {
        let mut p = Params::default();
        p.merge_body(json.as_bytes(), Some("application/json")).unwrap();
        p
    }

    fn check(json: &str) -> Result<NewSubmission, FieldErrors> {
        new_submission(&params(json), false, &cfg(), &Languages::load(None).unwrap())
    }

    #[test]
    fn defaults_fill_a_minimal_submission() {
        let s = check(r#"{"source_code":"print(1)","language_id":71}"#).unwrap();
        assert_eq!(s.cpu_time_limit, 5.0);
        assert_eq!(s.memory_limit, 128_000);
        assert_eq!(s.number_of_runs, 1);
        assert_eq!(s.source_code.as_deref(), Some(&b"print(1)"[..]));
        assert!(s.stdin.is_none());
    }

    #[test]
    fn strings_are_accepted_for_numbers_and_booleans() {
        let s = check(r#"{"source_code":"x","language_id":"71","cpu_time_limit":"2.5","redirect_stderr_to_stdout":"true"}"#).unwrap();
        assert_eq!((s.language_id, s.cpu_time_limit, s.redirect_stderr_to_stdout), (71, 2.5, true));
    }

    /// The errors for a request, and what Judge0 answers, as JSON text: key order matters.
    #[track_caller]
    fn assert_errors(request: serde_json::Value, expected: serde_json::Value) {
        let got = check(&request.to_string()).unwrap_err().to_json();
        assert_eq!(got.to_string(), expected.to_string(), "{request}");
    }

    #[test]
    fn judge0_messages_in_judge0s_order() {
        use serde_json::json;
        assert_errors(
            json!({"language_id": 999}),
            json!({"source_code": ["can't be blank"], "language_id": ["language with id 999 doesn't exist"]}),
        );
        assert_errors(
            json!({}),
            json!({"source_code": ["can't be blank"],
                "language_id": ["can't be blank", "language with id  doesn't exist"]}),
        );
        assert_errors(
            json!({"source_code": "x", "language_id": "abc"}),
            json!({"language_id": ["language with id 0 doesn't exist"]}),
        );
        assert!(check(r#"{"source_code":"x","language_id":" 71abc"}"#).is_ok());
        assert_errors(
            json!({"source_code": "x", "language_id": 71, "memory_limit": 10, "number_of_runs": "abc",
                "cpu_time_limit": 100}),
            json!({
                "number_of_runs": ["is not a number"],
                "cpu_time_limit": ["must be less than or equal to 15.0"],
                "memory_limit": ["must be greater than or equal to 2048"],
            }),
        );
        assert_errors(
            json!({"source_code": "x", "language_id": 71, "number_of_runs": 0,
                "max_processes_and_or_threads": 0, "cpu_time_limit": -1, "wall_time_limit": 0}),
            json!({
                "number_of_runs": ["must be greater than 0"],
                "cpu_time_limit": ["must be greater than or equal to 0"],
                "wall_time_limit": ["must be greater than or equal to 1"],
                "max_processes_and_or_threads": ["must be greater than 0"],
            }),
        );
        assert_errors(
            json!({"source_code": " ", "language_id": 71, "compiler_options": "-O2"}),
            json!({"source_code": ["can't be blank"],
                "compiler_options": ["setting compiler options is only allowed for compiled languages"]}),
        );
        assert_errors(
            json!({"source_code": "x", "language_id": 50, "compiler_options": "-O2; rm -rf /"}),
            json!({"compiler_options": ["compiler options contain characters that are not allowed"]}),
        );
        assert_errors(
            json!({"source_code": "x", "language_id": 71, "enable_network": true}),
            json!({"enable_network": ["enabling network is not allowed"]}),
        );
        assert_errors(json!({"language_id": 89}), json!({"additional_files": ["can't be blank"]}));
        assert_errors(
            json!({"language_id": 89, "source_code": "x"}),
            json!({"source_code": ["must be blank"], "additional_files": ["can't be blank"]}),
        );
    }

    #[test]
    fn base64_input_is_decoded_as_judge0_does() {
        // Nothing is refused: what is not base64 decodes to what Ruby makes of it.
        let p = params(r#"{"source_code":"cHJpbnQoMSk=\n","language_id":71,"stdin":"a*b"}"#);
        let s = new_submission(&p, true, &cfg(), &Languages::load(None).unwrap()).unwrap();
        assert_eq!(s.source_code.as_deref(), Some(&b"print(1)"[..]));
        assert_eq!(s.stdin.as_deref(), Some(&b"i"[..]));
        let p = params(r#"{"source_code":"@@@","language_id":71,"stdin":"!!","additional_files":"@@@"}"#);
        let e = new_submission(&p, true, &cfg(), &Languages::load(None).unwrap()).unwrap_err();
        assert_eq!(e.to_json(), serde_json::json!({"source_code": ["can't be blank"]}));
    }
}
