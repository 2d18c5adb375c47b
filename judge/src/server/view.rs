//! A submission as clients see it: the `fields` they asked for, in Judge0's formats.

use judge_wire::Status;
use serde_json::{Map, Value, json};

use crate::db::Submission;
use crate::format;
use crate::languages::Languages;

use super::error::ApiError;

/// `fields=*`: exactly these 35 keys, in this order.
pub const ALL_FIELDS: [&str; 35] = [
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
];

/// The fields shown when the request names none.
pub const DEFAULT_FIELDS: [&str; 8] =
    ["stdout", "time", "memory", "stderr", "token", "compile_output", "message", "status"];

/// The message Judge0 gives when output cannot be shown as UTF-8.
pub const NOT_UTF8: &str = "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter";

/// The same, where several submissions are shown (lists and batches).
pub const NOT_UTF8_MANY: &str = "some attributes for one or more submissions cannot be converted to UTF-8, use base64_encoded=true query parameter";

/// The fields a `fields` parameter asks for, in Judge0's serializer order (the order of
/// [`ALL_FIELDS`], whatever the order asked: `status,token` shows `token` first).
pub fn parse_fields(param: Option<&str>) -> Result<Vec<&'static str>, ApiError> {
    let Some(param) = param.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(DEFAULT_FIELDS.to_vec());
    };
    if param == "*" {
        return Ok(ALL_FIELDS.to_vec());
    }
    let asked: Vec<&str> = param.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    let unknown: Vec<&str> = asked.iter().copied().filter(|name| !ALL_FIELDS.contains(name)).collect();
    if !unknown.is_empty() {
        return Err(ApiError::BadRequest(format!("invalid fields: [{}]", unknown.join(", "))));
    }
    Ok(ALL_FIELDS.iter().copied().filter(|f| asked.contains(f)).collect())
}

/// A field to show is not UTF-8, and base64 was not asked for. Alone it is a 400 with
/// [`NOT_UTF8`]; where several submissions are shown, say [`NOT_UTF8_MANY`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{NOT_UTF8}")]
pub struct NotUtf8;

impl From<NotUtf8> for ApiError {
    fn from(_: NotUtf8) -> Self {
        ApiError::BadRequest(NOT_UTF8.into())
    }
}

fn bytes_field(bytes: Option<&[u8]>, base64: bool) -> Result<Value, NotUtf8> {
    match bytes.filter(|b| !b.is_empty()) {
        None => Ok(Value::Null),
        Some(b) if base64 => Ok(Value::String(format::base64_mime(b))),
        Some(b) => std::str::from_utf8(b).map(|s| Value::String(s.to_owned())).map_err(|_| NotUtf8),
    }
}

/// Renders `sub` with `fields`. Text fields are base64 (MIME style) when `base64` is set;
/// otherwise text that is not UTF-8 fails the whole answer, as in Judge0.
pub fn render(
    sub: &Submission,
    fields: &[&str],
    base64: bool,
    languages: &Languages,
) -> Result<Value, NotUtf8> {
    let n = &sub.new;
    let mut out = Map::with_capacity(fields.len());
    for field in fields {
        let value = match *field {
            "source_code" => bytes_field(n.source_code.as_deref(), base64)?,
            "language_id" => json!(n.language_id),
            "stdin" => bytes_field(n.stdin.as_deref(), base64)?,
            "expected_output" => bytes_field(n.expected_output.as_deref(), base64)?,
            "stdout" => bytes_field(sub.stdout.as_deref(), base64)?,
            "status_id" => json!(sub.status_id),
            "created_at" => json!(format::timestamp(sub.created_at)),
            "finished_at" => sub.finished_at.map(format::timestamp).map_or(Value::Null, Value::String),
            "time" => sub.time.map(format::decimal).map_or(Value::Null, Value::String),
            "memory" => json!(sub.memory),
            "stderr" => bytes_field(sub.stderr.as_deref(), base64)?,
            "token" => json!(sub.token.to_string()),
            "number_of_runs" => json!(n.number_of_runs),
            "cpu_time_limit" => json!(format::decimal(n.cpu_time_limit)),
            "cpu_extra_time" => json!(format::decimal(n.cpu_extra_time)),
            "wall_time_limit" => json!(format::decimal(n.wall_time_limit)),
            "memory_limit" => json!(n.memory_limit),
            "stack_limit" => json!(n.stack_limit),
            "max_processes_and_or_threads" => json!(n.max_processes_and_or_threads),
            "enable_per_process_and_thread_time_limit" => json!(n.enable_per_process_and_thread_time_limit),
            "enable_per_process_and_thread_memory_limit" => {
                json!(n.enable_per_process_and_thread_memory_limit)
            }
            "max_file_size" => json!(n.max_file_size),
            "compile_output" => bytes_field(sub.compile_output.as_deref(), base64)?,
            "exit_code" => json!(sub.exit_code),
            "exit_signal" => json!(sub.exit_signal),
            "message" => bytes_field(sub.message.as_deref().map(str::as_bytes), base64)?,
            "wall_time" => sub.wall_time.map(format::decimal).map_or(Value::Null, Value::String),
            "compiler_options" => json!(n.compiler_options),
            "command_line_arguments" => json!(n.command_line_arguments),
            "redirect_stderr_to_stdout" => json!(n.redirect_stderr_to_stdout),
            "callback_url" => json!(n.callback_url),
            "additional_files" => {
                n.additional_files.as_deref().map(format::base64_mime).map_or(Value::Null, Value::String)
            }
            "enable_network" => json!(n.enable_network),
            "status" => match Status::from_id(sub.status_id) {
                Some(s) => json!({"id": s.id(), "description": s.description()}),
                None => Value::Null,
            },
            "language" => {
                let name = languages.get(n.language_id).map(|l| l.name);
                json!({"id": n.language_id, "name": name})
            }
            _ => continue,
        };
        out.insert((*field).to_owned(), value);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_and_unknown_ones_are_named() {
        assert_eq!(parse_fields(None).unwrap(), DEFAULT_FIELDS.to_vec());
        assert_eq!(parse_fields(Some("*")).unwrap().len(), 35);
        assert_eq!(parse_fields(Some("token, status,token")).unwrap(), vec!["token", "status"]);
        assert_eq!(parse_fields(Some("status,message,stdout")).unwrap(), vec!["stdout", "message", "status"]);
        let defaults: Vec<&str> = ALL_FIELDS.iter().copied().filter(|f| DEFAULT_FIELDS.contains(f)).collect();
        assert_eq!(defaults, DEFAULT_FIELDS, "the default fields are in serializer order too");
        let err = parse_fields(Some("token,x,y")).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(m) if m == "invalid fields: [x, y]"));
    }
}
