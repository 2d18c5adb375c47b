//! Turning request parameters into a valid submission, with Judge0's rules, defaults and
//! messages.

use crate::config::Judge0Config;
use crate::db::NewSubmission;
use crate::format;
use crate::languages::Languages;

use super::error::FieldErrors;
use super::params::{Cast, Params};

/// Id of Judge0's multi-file program language (a zip with `compile` and `run`).
pub const MULTI_FILE: i32 = 89;
/// Longest `compiler_options` and `command_line_arguments`.
const MAX_ARGUMENT_CHARS: usize = 512;

/// Reads a text field: raw UTF-8, or base64 when the request says so. Empty is absent.
fn text(p: &Params, key: &str, base64: bool, errors: &mut FieldErrors) -> Option<Vec<u8>> {
    let raw = p.string(key)?;
    let bytes = if base64 {
        match format::unbase64(&raw) {
            Some(b) => b,
            None => {
                errors.add(key, "is not valid base64");
                return None;
            }
        }
    } else {
        raw.into_bytes()
    };
    (!bytes.is_empty()).then_some(bytes)
}

/// A number in `min..=max` (the message shows bounds as Judge0 does: floats with `.0`).
fn bounded(
    p: &Params,
    key: &str,
    default: f64,
    min: f64,
    max: f64,
    integer: bool,
    errors: &mut FieldErrors,
) -> f64 {
    let shown = |v: f64| if integer { format!("{}", v as i64) } else { format::decimal(v) };
    match p.number(key) {
        Err(Cast::NotANumber) => {
            errors.add(key, "is not a number");
            default
        }
        Ok(None) => default,
        Ok(Some(v)) => {
            if v < min {
                errors.add(key, format!("must be greater than or equal to {}", shown(min)));
            }
            if v > max {
                errors.add(key, format!("must be less than or equal to {}", shown(max)));
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

/// Validates one submission's parameters and fills in defaults.
pub fn new_submission(
    p: &Params,
    base64: bool,
    cfg: &Judge0Config,
    languages: &Languages,
) -> Result<NewSubmission, FieldErrors> {
    let mut errors = FieldErrors::default();

    let language_id = match p.number("language_id") {
        Err(_) => {
            errors.add("language_id", "is not a number");
            None
        }
        Ok(None) => {
            errors.add("language_id", "can't be blank");
            None
        }
        Ok(Some(v)) => {
            let id = v as i32;
            match languages.get(id) {
                None => {
                    errors.add("language_id", format!("language with id {id} doesn't exist"));
                    None
                }
                Some(l) if l.def.is_archived => {
                    errors.add(
                        "language_id",
                        format!("language with id {id} is archived and cannot be used anymore"),
                    );
                    None
                }
                Some(_) => Some(id),
            }
        }
    };
    let is_project = language_id.and_then(|id| languages.get(id)).is_some_and(|l| l.def.id == MULTI_FILE);

    let source_code = text(p, "source_code", base64, &mut errors);
    if source_code.is_none() && !is_project && !errors.0.iter().any(|(f, _)| f == "source_code") {
        errors.add("source_code", "can't be blank");
    }
    let stdin = text(p, "stdin", base64, &mut errors);
    let expected_output = text(p, "expected_output", base64, &mut errors);

    let compiler_options = p.string("compiler_options").filter(|s| !s.is_empty());
    if let Some(opts) = &compiler_options {
        if opts.chars().count() > MAX_ARGUMENT_CHARS {
            errors
                .add("compiler_options", format!("is too long (maximum is {MAX_ARGUMENT_CHARS} characters)"));
        }
        if !cfg.enable_compiler_options {
            errors.add("compiler_options", "setting compiler options is not allowed");
        } else if let Some(id) = language_id
            && !cfg.allowed_languages_for_compile_options.is_empty()
            && !cfg.allowed_languages_for_compile_options.contains(&id)
        {
            errors.add(
                "compiler_options",
                format!("setting compiler options is not allowed for language with id {id}"),
            );
        }
        if !safe_compiler_options(opts) {
            errors.add("compiler_options", "compiler options contain characters that are not allowed");
        }
    }
    let command_line_arguments = p.string("command_line_arguments").filter(|s| !s.is_empty());
    if let Some(args) = &command_line_arguments {
        if args.chars().count() > MAX_ARGUMENT_CHARS {
            errors.add(
                "command_line_arguments",
                format!("is too long (maximum is {MAX_ARGUMENT_CHARS} characters)"),
            );
        }
        if !cfg.enable_command_line_arguments {
            errors.add("command_line_arguments", "setting command line arguments is not allowed");
        }
    }

    let cpu_time_limit =
        bounded(p, "cpu_time_limit", cfg.cpu_time_limit, 0.0, cfg.max_cpu_time_limit, false, &mut errors);
    let cpu_extra_time =
        bounded(p, "cpu_extra_time", cfg.cpu_extra_time, 0.0, cfg.max_cpu_extra_time, false, &mut errors);
    let wall_time_limit =
        bounded(p, "wall_time_limit", cfg.wall_time_limit, 1.0, cfg.max_wall_time_limit, false, &mut errors);
    let memory_limit = bounded(
        p,
        "memory_limit",
        cfg.memory_limit as f64,
        2048.0,
        cfg.max_memory_limit as f64,
        true,
        &mut errors,
    );
    let stack_limit =
        bounded(p, "stack_limit", cfg.stack_limit as f64, 0.0, cfg.max_stack_limit as f64, true, &mut errors);
    let max_processes = bounded(
        p,
        "max_processes_and_or_threads",
        cfg.max_processes_and_or_threads as f64,
        1.0,
        cfg.max_max_processes_and_or_threads as f64,
        true,
        &mut errors,
    );
    let max_file_size = bounded(
        p,
        "max_file_size",
        cfg.max_file_size as f64,
        0.0,
        cfg.max_max_file_size as f64,
        true,
        &mut errors,
    );
    let number_of_runs = bounded(
        p,
        "number_of_runs",
        cfg.number_of_runs as f64,
        1.0,
        cfg.max_number_of_runs as f64,
        true,
        &mut errors,
    );

    let per_process_time = p
        .boolean("enable_per_process_and_thread_time_limit")
        .unwrap_or(cfg.enable_per_process_and_thread_time_limit);
    if per_process_time && !cfg.allow_enable_per_process_and_thread_time_limit {
        errors.add(
            "enable_per_process_and_thread_time_limit",
            "setting per process and thread time limit is not allowed",
        );
    }
    let per_process_memory = p
        .boolean("enable_per_process_and_thread_memory_limit")
        .unwrap_or(cfg.enable_per_process_and_thread_memory_limit);
    if per_process_memory && !cfg.allow_enable_per_process_and_thread_memory_limit {
        errors.add(
            "enable_per_process_and_thread_memory_limit",
            "setting per process and thread memory limit is not allowed",
        );
    }
    let enable_network = p.boolean("enable_network").unwrap_or(cfg.enable_network);
    if enable_network && !cfg.allow_enable_network {
        errors.add("enable_network", "enabling network is not allowed");
    }
    let redirect_stderr_to_stdout =
        p.boolean("redirect_stderr_to_stdout").unwrap_or(cfg.redirect_stderr_to_stdout);

    let callback_url = p.string("callback_url").filter(|s| !s.is_empty());
    if let Some(url) = &callback_url {
        if !cfg.enable_callbacks {
            errors.add("callback_url", "setting callback url is not allowed");
        } else if !is_http_url(url) {
            errors.add("callback_url", "is not a valid URL");
        }
    }

    // Always base64, whatever `base64_encoded` says: it is a zip.
    let additional_files = match p.string("additional_files").filter(|s| !s.is_empty()) {
        None => None,
        Some(_) if !cfg.enable_additional_files => {
            errors.add("additional_files", "setting additional files is not allowed");
            None
        }
        Some(raw) => match format::unbase64(&raw) {
            Some(bytes) if !bytes.is_empty() => Some(bytes),
            _ => {
                errors.add("additional_files", "is not valid base64");
                None
            }
        },
    };
    if is_project && additional_files.is_none() && !errors.0.iter().any(|(f, _)| f == "additional_files") {
        errors.add("additional_files", "can't be blank");
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewSubmission {
        source_code,
        language_id: language_id.unwrap_or_default(),
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

    #[test]
    fn judge0_messages() {
        let e = check(r#"{"language_id":999}"#).unwrap_err();
        assert_eq!(
            e.to_json(),
            serde_json::json!({
                "language_id": ["language with id 999 doesn't exist"],
                "source_code": ["can't be blank"]
            })
        );
        let e = check(r#"{"source_code":"x","language_id":71,"cpu_time_limit":100,"memory_limit":10,"number_of_runs":"abc"}"#).unwrap_err();
        assert_eq!(
            e.to_json(),
            serde_json::json!({
                "cpu_time_limit": ["must be less than or equal to 15.0"],
                "memory_limit": ["must be greater than or equal to 2048"],
                "number_of_runs": ["is not a number"]
            })
        );
        let e =
            check(r#"{"source_code":"x","language_id":50,"compiler_options":"-O2; rm -rf /"}"#).unwrap_err();
        assert_eq!(e.0[0].0, "compiler_options");
        let e = check(r#"{"source_code":"x","language_id":71,"enable_network":true}"#).unwrap_err();
        assert_eq!(e.0[0].1, vec!["enabling network is not allowed".to_owned()]);
        let e = check(r#"{"language_id":89}"#).unwrap_err();
        assert_eq!(e.to_json(), serde_json::json!({"additional_files": ["can't be blank"]}));
    }

    #[test]
    fn base64_input_is_decoded_and_checked() {
        let p = params(r#"{"source_code":"cHJpbnQoMSk=\n","language_id":71,"stdin":"@@@"}"#);
        let e = new_submission(&p, true, &cfg(), &Languages::load(None).unwrap()).unwrap_err();
        assert_eq!(e.to_json(), serde_json::json!({"stdin": ["is not valid base64"]}));
        let p = params(r#"{"source_code":"cHJpbnQoMSk=\n","language_id":71}"#);
        let s = new_submission(&p, true, &cfg(), &Languages::load(None).unwrap()).unwrap();
        assert_eq!(s.source_code.as_deref(), Some(&b"print(1)"[..]));
    }
}
