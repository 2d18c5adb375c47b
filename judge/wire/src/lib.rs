//! Wire types shared by the judge and the services that call it: the 14 Judge0 statuses and
//! the live events of a submission.
//!
//! This crate knows nothing about HTTP servers, databases or the sandbox; it is data only.

use serde::{Deserialize, Serialize};

/// The Judge0 CE 1.13.1 statuses: a closed set that clients depend on; never add one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 1
    InQueue,
    /// 2
    Processing,
    /// 3
    Accepted,
    /// 4
    WrongAnswer,
    /// 5
    TimeLimitExceeded,
    /// 6
    CompilationError,
    /// 7
    RuntimeErrorSigsegv,
    /// 8
    RuntimeErrorSigxfsz,
    /// 9
    RuntimeErrorSigfpe,
    /// 10
    RuntimeErrorSigabrt,
    /// 11
    RuntimeErrorNzec,
    /// 12
    RuntimeErrorOther,
    /// 13
    InternalError,
    /// 14
    ExecFormatError,
}

impl Status {
    /// Every status, in id order.
    pub const ALL: [Status; 14] = [
        Status::InQueue,
        Status::Processing,
        Status::Accepted,
        Status::WrongAnswer,
        Status::TimeLimitExceeded,
        Status::CompilationError,
        Status::RuntimeErrorSigsegv,
        Status::RuntimeErrorSigxfsz,
        Status::RuntimeErrorSigfpe,
        Status::RuntimeErrorSigabrt,
        Status::RuntimeErrorNzec,
        Status::RuntimeErrorOther,
        Status::InternalError,
        Status::ExecFormatError,
    ];

    /// Judge0's numeric id.
    pub fn id(self) -> i32 {
        Status::ALL.iter().position(|s| *s == self).map_or(0, |i| i as i32 + 1)
    }

    /// The status with this id, if any.
    pub fn from_id(id: i32) -> Option<Status> {
        usize::try_from(id).ok().and_then(|i| i.checked_sub(1)).and_then(|i| Status::ALL.get(i).copied())
    }

    /// Judge0's description, byte for byte.
    pub fn description(self) -> &'static str {
        match self {
            Status::InQueue => "In Queue",
            Status::Processing => "Processing",
            Status::Accepted => "Accepted",
            Status::WrongAnswer => "Wrong Answer",
            Status::TimeLimitExceeded => "Time Limit Exceeded",
            Status::CompilationError => "Compilation Error",
            Status::RuntimeErrorSigsegv => "Runtime Error (SIGSEGV)",
            Status::RuntimeErrorSigxfsz => "Runtime Error (SIGXFSZ)",
            Status::RuntimeErrorSigfpe => "Runtime Error (SIGFPE)",
            Status::RuntimeErrorSigabrt => "Runtime Error (SIGABRT)",
            Status::RuntimeErrorNzec => "Runtime Error (NZEC)",
            Status::RuntimeErrorOther => "Runtime Error (Other)",
            Status::InternalError => "Internal Error",
            Status::ExecFormatError => "Exec Format Error",
        }
    }

    /// Whether a submission in this status is finished.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::InQueue | Status::Processing)
    }
}

/// A status as Judge0 shows it: `{"id":3,"description":"Accepted"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// The id.
    pub id: i32,
    /// The description.
    pub description: String,
}

impl From<Status> for StatusView {
    fn from(s: Status) -> Self {
        StatusView { id: s.id(), description: s.description().to_owned() }
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StatusView::from(*self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let view = StatusView::deserialize(d)?;
        Status::from_id(view.id)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown status id {}", view.id)))
    }
}

/// Which output stream a chunk of live output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// The program's stdout.
    Stdout,
    /// The program's stderr.
    Stderr,
    /// The compiler's output.
    Compile,
}

/// Something that happened to a submission, as workers publish it and the
/// `GET /submissions/:token/events` stream relays it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The status changed (to Processing, or back In Queue after a worker died).
    Status {
        /// The new status.
        status: Status,
    },
    /// A chunk of output, as the program produced it. `data` is base64 (output need not be
    /// UTF-8); `run` counts from 1 when a submission runs several times.
    Output {
        /// Which stream.
        stream: OutputStream,
        /// The bytes, base64-encoded.
        data: String,
        /// Which run produced it.
        run: u32,
    },
    /// The submission is finished; `submission` holds its default fields, as
    /// `GET /submissions/:token` shows them.
    Done {
        /// The final submission.
        submission: serde_json::Value,
    },
}

/// An event of one submission, as carried on the judge's internal channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The submission's token.
    pub token: String,
    /// What happened.
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_descriptions_match_judge0() {
        assert_eq!(Status::ALL.len(), 14);
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(s.id(), i as i32 + 1);
            assert_eq!(Status::from_id(s.id()), Some(*s));
        }
        assert_eq!(Status::from_id(0), None);
        assert_eq!(Status::from_id(15), None);
        assert_eq!(
            serde_json::to_string(&Status::TimeLimitExceeded).unwrap(),
            r#"{"id":5,"description":"Time Limit Exceeded"}"#
        );
        assert!(!Status::Processing.is_final() && Status::WrongAnswer.is_final());
    }

    #[test]
    fn events_round_trip() {
        let e = Envelope {
            token: "t".into(),
            event: Event::Output { stream: OutputStream::Stdout, data: "aGk=".into(), run: 1 },
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"token":"t","event":{"type":"output","stream":"stdout","data":"aGk=","run":1}}"#
        );
        assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), e);
    }
}
