//! Messages between the host and a keeper over their `SOCK_SEQPACKET` pair.
//!
//! Fixed little layouts of `u64` words, encoded by hand: the keeper side must not allocate,
//! and both sides are the same binary.

/// Host → keeper: start setting up (ids are mapped, the cgroup is joined).
pub(crate) const GO: u8 = b'G';
/// Host → keeper: run a command (header, then arguments and environment).
pub(crate) const RUN: u8 = b'R';
/// Host → keeper: kill every process of the current run.
pub(crate) const KILL: u8 = b'K';
/// Keeper → host: the root is built, ready for runs.
pub(crate) const READY: u8 = b'Y';
/// Keeper → host: setup failed at a step, with an errno.
pub(crate) const FAILED: u8 = b'F';
/// Keeper → host: the run is over and every process of it is gone.
pub(crate) const DONE: u8 = b'D';

/// Largest run request (header, arguments and environment).
pub(crate) const REQUEST_MAX: usize = 256 * 1024;
/// Most arguments, and most environment entries, of one command.
pub(crate) const MAX_STRINGS: usize = 1024;

/// Setup steps of the keeper that are not mount-plan operations (those are numbered from 0).
pub(crate) mod step {
    pub(crate) const FDS: u32 = 1000;
    pub(crate) const SIGNALS: u32 = 1001;
    pub(crate) const CGROUP_NS: u32 = 1002;
    pub(crate) const LOCKDOWN: u32 = 1009;
    pub(crate) const IDS: u32 = 1003;
    pub(crate) const PIVOT: u32 = 1004;
    pub(crate) const ROOT_RO: u32 = 1005;
    pub(crate) const HOSTNAME: u32 = 1006;
    pub(crate) const LOOPBACK: u32 = 1007;
    pub(crate) const DUMPABLE: u32 = 1008;

    /// Steps of the process that becomes the program, before `execve`.
    pub(crate) const CLONE: u32 = 2000;
    pub(crate) const RLIMIT: u32 = 2002;
    pub(crate) const STDIO: u32 = 2003;
    pub(crate) const CHDIR: u32 = 2004;
    pub(crate) const CAPS: u32 = 2005;
    pub(crate) const SET_IDS: u32 = 2006;
    pub(crate) const NO_NEW_PRIVS: u32 = 2007;
    pub(crate) const EXEC: u32 = 2009;

    /// Words for a step number, for error messages.
    pub(crate) fn describe(step: u32) -> &'static str {
        match step {
            FDS => "close inherited descriptors",
            SIGNALS => "reset signal handling",
            CGROUP_NS => "enter a cgroup namespace",
            IDS => "switch to the keeper's ids",
            PIVOT => "pivot to the new root",
            ROOT_RO => "make the root read-only",
            HOSTNAME => "set the host name",
            LOOPBACK => "bring up loopback",
            DUMPABLE => "make the keeper non-dumpable",
            LOCKDOWN => "drop the keeper's privileges and install the seccomp filter",
            CLONE => "start the program's process",
            RLIMIT => "set resource limits",
            STDIO => "connect stdin, stdout and stderr",
            CHDIR => "enter /box",
            CAPS => "drop capabilities",
            SET_IDS => "switch to the program's ids",
            NO_NEW_PRIVS => "set no_new_privs",
            EXEC => "execute",
            _ => "set up",
        }
    }
}

/// Resource limits as the keeper applies them (`u64::MAX` = unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rlimits {
    pub(crate) cpu_secs: u64,
    pub(crate) address_space: u64,
    pub(crate) stack: u64,
    pub(crate) file_size: u64,
    pub(crate) open_files: u64,
    pub(crate) processes: u64,
}

/// The fixed part of a run request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RunHeader {
    pub(crate) rlimits: Rlimits,
    pub(crate) argc: u64,
    pub(crate) envc: u64,
}

/// Number of `u64` words in an encoded `RunHeader`.
pub(crate) const HEADER_WORDS: usize = 8;
/// Bytes before the strings of a run request: the tag byte, padding, the header words.
pub(crate) const HEADER_BYTES: usize = 8 + 8 * HEADER_WORDS;

impl RunHeader {
    pub(crate) fn to_words(self) -> [u64; HEADER_WORDS] {
        let r = self.rlimits;
        [r.cpu_secs, r.address_space, r.stack, r.file_size, r.open_files, r.processes, self.argc, self.envc]
    }

    pub(crate) fn from_words(w: [u64; HEADER_WORDS]) -> Self {
        RunHeader {
            rlimits: Rlimits {
                cpu_secs: w[0],
                address_space: w[1],
                stack: w[2],
                file_size: w[3],
                open_files: w[4],
                processes: w[5],
            },
            argc: w[6],
            envc: w[7],
        }
    }
}

/// What the keeper reports when a run is over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Done {
    /// `wait` status of the program's process.
    pub(crate) wait_status: i32,
    /// Non-zero when the program could not be started: the step that failed.
    pub(crate) failed_step: u32,
    /// The errno of the failed step.
    pub(crate) errno: i32,
    /// User and system CPU time of every process of the run, in microseconds.
    pub(crate) cpu_us: u64,
    /// Largest peak RSS of any process of the run, in KiB.
    pub(crate) max_rss_kb: u64,
    /// Time from start to the end of the program's process, in nanoseconds.
    pub(crate) wall_ns: u64,
}

/// Encoded size of `Done`: tag and padding, then six words.
pub(crate) const DONE_BYTES: usize = 8 + 8 * 6;

/// Reads native-endian `u64` words after an 8-byte tag block.
pub(crate) fn read_words<const N: usize>(buf: &[u8]) -> Option<[u64; N]> {
    let mut out = [0u64; N];
    for (i, word) in out.iter_mut().enumerate() {
        let start = 8 + 8 * i;
        let bytes = buf.get(start..start + 8)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(bytes);
        *word = u64::from_ne_bytes(raw);
    }
    Some(out)
}

/// Writes a tag and native-endian `u64` words into `buf`; returns the length used.
pub(crate) fn write_words(buf: &mut [u8], tag: u8, words: &[u64]) -> usize {
    let len = 8 + 8 * words.len();
    if buf.len() < len {
        return 0;
    }
    buf[..8].fill(0);
    buf[0] = tag;
    for (i, word) in words.iter().enumerate() {
        let start = 8 + 8 * i;
        buf[start..start + 8].copy_from_slice(&word.to_ne_bytes());
    }
    len
}

impl Done {
    pub(crate) fn encode(&self, buf: &mut [u8; DONE_BYTES]) -> usize {
        write_words(
            buf,
            DONE,
            &[
                self.wait_status as u32 as u64,
                self.failed_step as u64,
                self.errno as u32 as u64,
                self.cpu_us,
                self.max_rss_kb,
                self.wall_ns,
            ],
        )
    }

    pub(crate) fn decode(buf: &[u8]) -> Option<Done> {
        if buf.first() != Some(&DONE) {
            return None;
        }
        let w: [u64; 6] = read_words(buf)?;
        Some(Done {
            wait_status: w[0] as u32 as i32,
            failed_step: w[1] as u32,
            errno: w[2] as u32 as i32,
            cpu_us: w[3],
            max_rss_kb: w[4],
            wall_ns: w[5],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_done_round_trip() {
        let h = RunHeader {
            rlimits: Rlimits {
                cpu_secs: 3,
                address_space: u64::MAX,
                stack: 1 << 20,
                file_size: 7,
                open_files: 64,
                processes: 9,
            },
            argc: 2,
            envc: 1,
        };
        let mut buf = [0u8; HEADER_BYTES];
        assert_eq!(write_words(&mut buf, RUN, &h.to_words()), HEADER_BYTES);
        assert_eq!(RunHeader::from_words(read_words(&buf).unwrap()), h);

        let d =
            Done { wait_status: 9, failed_step: step::EXEC, errno: -2, cpu_us: 5, max_rss_kb: 6, wall_ns: 7 };
        let mut buf = [0u8; DONE_BYTES];
        let n = d.encode(&mut buf);
        assert_eq!(Done::decode(&buf[..n]), Some(d));
        assert_eq!(Done::decode(&buf[..n - 1]), None);
    }
}
