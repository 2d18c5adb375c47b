//! The seccomp filter every sandboxed program runs under.
//!
//! A deny list: what untrusted code never needs and what would let it reach the kernel's
//! riskier surfaces or leave its namespaces. Denied calls fail with `EPERM`, so programs see an
//! ordinary error; a call from a foreign architecture (32-bit `int 0x80`, x32) kills the
//! process, since the deny list is written for native numbers only. A few calls are allowed
//! only for some arguments: `clone` without namespace flags, harmless `personality` values,
//! and `socket`/`socketpair` only for the families a program may need (the `AF_*`
//! constants); other families fail with `EAFNOSUPPORT`.

use libc::sock_filter;

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
// `args` are 64-bit: on the little-endian machines we build for, an argument's low word comes
// first.
const OFF_ARG0_LOW: u32 = 16;
const OFF_ARG2_LOW: u32 = 32;

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// Namespace flags a program may not pass to `clone`.
const CLONE_NAMESPACES: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32;

/// `personality` arguments that change nothing dangerous: query, PER_LINUX, PER_LINUX32.
const ALLOWED_PERSONALITIES: [u32; 3] = [0, 8, 0xffff_ffff];

// Socket families a program may open; every other one fails with `EAFNOSUPPORT`, as if the
// kernel had been built without it. AF_VSOCK reaches the hypervisor, AF_PACKET, AF_ALG,
// AF_KEY, AF_BLUETOOTH, AF_XDP, AF_CAN, AF_TIPC, AF_RDS, ... are kernel code a judged program
// has no use for and that has had its share of privilege escalations.
const AF_UNIX: u32 = libc::AF_UNIX as u32;
const AF_INET: u32 = libc::AF_INET as u32;
const AF_INET6: u32 = libc::AF_INET6 as u32;
/// Netlink only for routing information: glibc's `getifaddrs`, `if_nameindex` and
/// `getaddrinfo(AI_ADDRCONFIG)` use it, and runtimes (Go, Java) call those at start-up.
const AF_NETLINK: u32 = libc::AF_NETLINK as u32;
const NETLINK_ROUTE: u32 = libc::NETLINK_ROUTE as u32;

/// System calls denied outright, each with why a judged program has no use for it.
fn denied() -> Vec<(libc::c_long, &'static str)> {
    let mut v = vec![
        (libc::SYS_ptrace, "debugging other processes"),
        (libc::SYS_process_vm_readv, "reading other processes' memory"),
        (libc::SYS_process_vm_writev, "writing other processes' memory"),
        (libc::SYS_kcmp, "comparing other processes' kernel objects"),
        (libc::SYS_pidfd_getfd, "stealing other processes' descriptors"),
        (libc::SYS_mount, "mounting"),
        (libc::SYS_umount2, "unmounting"),
        (libc::SYS_pivot_root, "changing the root"),
        (libc::SYS_chroot, "changing the root"),
        (libc::SYS_open_tree, "new mount API"),
        (libc::SYS_move_mount, "new mount API"),
        (libc::SYS_fsopen, "new mount API"),
        (libc::SYS_fsconfig, "new mount API"),
        (libc::SYS_fsmount, "new mount API"),
        (libc::SYS_fspick, "new mount API"),
        (libc::SYS_mount_setattr, "new mount API"),
        (libc::SYS_unshare, "leaving namespaces"),
        (libc::SYS_setns, "entering namespaces"),
        (libc::SYS_kexec_load, "loading a kernel"),
        (libc::SYS_kexec_file_load, "loading a kernel"),
        (libc::SYS_reboot, "rebooting"),
        (libc::SYS_bpf, "eBPF programs"),
        (libc::SYS_perf_event_open, "performance counters (side channels)"),
        (libc::SYS_keyctl, "kernel keyrings"),
        (libc::SYS_add_key, "kernel keyrings"),
        (libc::SYS_request_key, "kernel keyrings"),
        (libc::SYS_io_uring_setup, "io_uring"),
        (libc::SYS_io_uring_enter, "io_uring"),
        (libc::SYS_io_uring_register, "io_uring"),
        (libc::SYS_userfaultfd, "userfaultfd (race amplification)"),
        (libc::SYS_swapon, "swap"),
        (libc::SYS_swapoff, "swap"),
        (libc::SYS_init_module, "kernel modules"),
        (libc::SYS_finit_module, "kernel modules"),
        (libc::SYS_delete_module, "kernel modules"),
        (libc::SYS_clock_settime, "setting the clock"),
        (libc::SYS_clock_adjtime, "setting the clock"),
        (libc::SYS_settimeofday, "setting the clock"),
        (libc::SYS_adjtimex, "setting the clock"),
        (libc::SYS_syslog, "the kernel log"),
        (libc::SYS_acct, "process accounting"),
        (libc::SYS_quotactl, "disk quotas"),
        (libc::SYS_sethostname, "host name"),
        (libc::SYS_setdomainname, "domain name"),
        (libc::SYS_vhangup, "terminals"),
        (libc::SYS_open_by_handle_at, "opening files by handle (container escapes)"),
        (libc::SYS_name_to_handle_at, "file handles"),
        (libc::SYS_fanotify_init, "filesystem-wide monitoring"),
        (libc::SYS_lookup_dcookie, "profiling"),
        (libc::SYS_quotactl_fd, "disk quotas"),
        (libc::SYS_mq_open, "POSIX message queues (would outlive the run)"),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        (libc::SYS_iopl, "port I/O"),
        (libc::SYS_ioperm, "port I/O"),
        (libc::SYS_uselib, "a.out libraries"),
        (libc::SYS__sysctl, "old sysctl"),
        // create_module, get_kernel_syms, query_module: long gone from the kernel.
        (174, "kernel modules"),
        (177, "kernel symbols"),
        (178, "kernel modules"),
        (libc::SYS_nfsservctl, "NFS server"),
        (libc::SYS_ustat, "old statfs"),
        (libc::SYS_sysfs, "old filesystem list"),
    ]);
    v
}

/// A compiled BPF program, ready to hand to `seccomp(2)`.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    program: Vec<sock_filter>,
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Where a conditional jump inside a [`Guard`] goes.
#[derive(Debug, Clone, Copy)]
enum Goto {
    /// The next step.
    Next,
    /// Return ALLOW.
    Allow,
    /// Return the guard's error.
    Deny,
}

/// One step of a [`Guard`], before its jumps are resolved to offsets.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Load the word at this offset of `struct seccomp_data` into the accumulator.
    Load(u32),
    /// Compare the accumulator with a constant.
    Eq(u32, Goto, Goto),
    /// Test the accumulator against a bit mask.
    AnyBit(u32, Goto, Goto),
}

/// A system call allowed only for some arguments: the steps run in order, and a call that
/// falls off their end is denied. Written with symbolic targets so no hand-counted jump
/// offsets hide in the filter.
struct Guard<const N: usize> {
    nr: libc::c_long,
    steps: [Step; N],
    deny: u32,
}

impl<const N: usize> Guard<N> {
    /// Emits `if nr == self.nr { steps; RET deny; RET allow }`.
    fn emit(&self, p: &mut Vec<sock_filter>) {
        // Every offset below is at most N + 2, so it fits the 8-bit jump fields.
        const { assert!(N + 2 <= u8::MAX as usize) };
        let (deny_at, allow_at) = (N as u8, N as u8 + 1);
        p.push(jump(BPF_JEQ_K, self.nr as u32, 0, allow_at + 1));
        for (i, step) in self.steps.iter().enumerate() {
            // Offsets count from the instruction after this one.
            let to = |goto: Goto| match goto {
                Goto::Next => 0,
                Goto::Deny => deny_at - i as u8 - 1,
                Goto::Allow => allow_at - i as u8 - 1,
            };
            p.push(match *step {
                Step::Load(offset) => stmt(BPF_LD_W_ABS, offset),
                Step::Eq(k, yes, no) => jump(BPF_JEQ_K, k, to(yes), to(no)),
                Step::AnyBit(mask, yes, no) => jump(BPF_JSET_K, mask, to(yes), to(no)),
            });
        }
        p.push(stmt(BPF_RET_K, self.deny));
        p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    }
}

impl Filter {
    /// Builds the filter for the architecture this crate was compiled for.
    pub(crate) fn new() -> Self {
        use Goto::{Allow, Deny, Next};
        let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let eafnosupport = SECCOMP_RET_ERRNO | libc::EAFNOSUPPORT as u32;
        let mut p = vec![
            stmt(BPF_LD_W_ABS, OFF_ARCH),
            jump(BPF_JEQ_K, NATIVE_ARCH, 1, 0),
            stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
            stmt(BPF_LD_W_ABS, OFF_NR),
        ];
        #[cfg(target_arch = "x86_64")]
        p.extend([
            // x32 system calls share the architecture value but set bit 30.
            jump(BPF_JGE_K, 0x4000_0000, 0, 1),
            stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        ]);
        // clone3 passes its flags in memory, out of a filter's reach: make libc fall back to
        // clone, whose flags we can check.
        p.extend([jump(BPF_JEQ_K, libc::SYS_clone3 as u32, 0, 1), stmt(BPF_RET_K, enosys)]);
        // Each guard ends in a return, so the accumulator it clobbers is never read again; the
        // deny list after them sees the call number loaded above.
        Guard {
            nr: libc::SYS_clone,
            steps: [Step::Load(OFF_ARG0_LOW), Step::AnyBit(CLONE_NAMESPACES, Deny, Allow)],
            deny: eperm,
        }
        .emit(&mut p);
        let [query, linux, linux32] = ALLOWED_PERSONALITIES;
        Guard {
            nr: libc::SYS_personality,
            steps: [
                Step::Load(OFF_ARG0_LOW),
                Step::Eq(query, Allow, Next),
                Step::Eq(linux, Allow, Next),
                Step::Eq(linux32, Allow, Next),
            ],
            deny: eperm,
        }
        .emit(&mut p);
        // The kernel reads family and protocol as `int`: only the low words matter.
        Guard {
            nr: libc::SYS_socket,
            steps: [
                Step::Load(OFF_ARG0_LOW),
                Step::Eq(AF_UNIX, Allow, Next),
                Step::Eq(AF_INET, Allow, Next),
                Step::Eq(AF_INET6, Allow, Next),
                Step::Eq(AF_NETLINK, Next, Deny),
                Step::Load(OFF_ARG2_LOW),
                Step::Eq(NETLINK_ROUTE, Allow, Next),
            ],
            deny: eafnosupport,
        }
        .emit(&mut p);
        Guard {
            nr: libc::SYS_socketpair,
            steps: [Step::Load(OFF_ARG0_LOW), Step::Eq(AF_UNIX, Allow, Next)],
            deny: eafnosupport,
        }
        .emit(&mut p);
        for (nr, _why) in denied() {
            p.push(jump(BPF_JEQ_K, nr as u32, 0, 1));
            p.push(stmt(BPF_RET_K, eperm));
        }
        p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
        Self { program: p }
    }

    /// The program in the form `seccomp(SECCOMP_SET_MODE_FILTER)` takes. The pointer inside
    /// borrows `self`.
    pub(crate) fn as_fprog(&self) -> libc::sock_fprog {
        libc::sock_fprog { len: self.program.len() as u16, filter: self.program.as_ptr() as *mut _ }
    }

    #[cfg(test)]
    fn run(&self, data: &SeccompData) -> u32 {
        // A tiny interpreter for the instructions we emit, so the jump arithmetic is tested
        // without installing the filter.
        let mut pc = 0usize;
        let mut acc = 0u32;
        loop {
            let ins = self.program[pc];
            match ins.code {
                BPF_LD_W_ABS => {
                    acc = match ins.k {
                        OFF_NR => data.nr,
                        OFF_ARCH => data.arch,
                        // Low and high words of the 64-bit arguments, as a little-endian
                        // kernel lays them out.
                        16..=63 if ins.k.is_multiple_of(4) => {
                            let arg = data.args[(ins.k as usize - 16) / 8];
                            if ins.k.is_multiple_of(8) { arg as u32 } else { (arg >> 32) as u32 }
                        }
                        other => panic!("unexpected load offset {other}"),
                    };
                    pc += 1;
                }
                BPF_RET_K => return ins.k,
                BPF_JEQ_K | BPF_JGE_K | BPF_JSET_K => {
                    let taken = match ins.code {
                        BPF_JEQ_K => acc == ins.k,
                        BPF_JGE_K => acc >= ins.k,
                        _ => acc & ins.k != 0,
                    };
                    pc += 1 + if taken { ins.jt as usize } else { ins.jf as usize };
                }
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }
}

#[cfg(test)]
struct SeccompData {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPERM: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const EAFNOSUPPORT: u32 = SECCOMP_RET_ERRNO | libc::EAFNOSUPPORT as u32;

    fn verdict(nr: libc::c_long, args: &[u64]) -> u32 {
        let mut data = SeccompData { nr: nr as u32, arch: NATIVE_ARCH, args: [0; 6] };
        data.args[..args.len()].copy_from_slice(args);
        Filter::new().run(&data)
    }

    fn socket(family: i32, protocol: i32) -> u32 {
        verdict(libc::SYS_socket, &[family as u64, libc::SOCK_STREAM as u64, protocol as u64])
    }

    #[test]
    fn ordinary_calls_pass_and_denied_calls_get_eperm() {
        for nr in [libc::SYS_read, libc::SYS_write, libc::SYS_execve, libc::SYS_exit_group] {
            assert_eq!(verdict(nr, &[0]), SECCOMP_RET_ALLOW, "syscall {nr}");
        }
        for (nr, why) in denied() {
            assert_eq!(verdict(nr, &[0]), EPERM, "syscall {nr} ({why})");
        }
    }

    #[test]
    fn clone_is_checked_by_flags_and_clone3_is_unavailable() {
        let thread_flags = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(verdict(libc::SYS_clone, &[thread_flags]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(libc::SYS_clone, &[libc::CLONE_NEWUSER as u64]), EPERM);
        assert_eq!(verdict(libc::SYS_clone, &[libc::CLONE_NEWNET as u64 | 17]), EPERM);
        assert_eq!(verdict(libc::SYS_clone3, &[0]), SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
    }

    #[test]
    fn personality_only_allows_harmless_values() {
        assert_eq!(verdict(libc::SYS_personality, &[0xffff_ffff]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(libc::SYS_personality, &[0]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(libc::SYS_personality, &[8]), SECCOMP_RET_ALLOW);
        // ADDR_NO_RANDOMIZE
        assert_eq!(verdict(libc::SYS_personality, &[0x0040000]), EPERM);
    }

    #[test]
    fn sockets_of_the_families_programs_use_are_allowed() {
        for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
            assert_eq!(socket(family, 0), SECCOMP_RET_ALLOW, "family {family}");
            // The protocol only matters for netlink.
            assert_eq!(socket(family, 17), SECCOMP_RET_ALLOW, "family {family}");
        }
        assert_eq!(socket(libc::AF_NETLINK, libc::NETLINK_ROUTE), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(libc::SYS_socketpair, &[libc::AF_UNIX as u64, 1, 0]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn sockets_of_other_families_get_eafnosupport() {
        for family in [
            libc::AF_UNSPEC,
            libc::AF_VSOCK,
            libc::AF_PACKET,
            libc::AF_ALG,
            libc::AF_KEY,
            libc::AF_BLUETOOTH,
            libc::AF_XDP,
            libc::AF_CAN,
            libc::AF_TIPC,
            libc::AF_RDS,
            0xffff,
        ] {
            assert_eq!(socket(family, 0), EAFNOSUPPORT, "socket family {family}");
            assert_eq!(verdict(libc::SYS_socketpair, &[family as u64]), EAFNOSUPPORT, "socketpair {family}");
        }
        for family in [libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK] {
            assert_eq!(verdict(libc::SYS_socketpair, &[family as u64]), EAFNOSUPPORT, "socketpair {family}");
        }
    }

    #[test]
    fn netlink_is_allowed_only_for_routing() {
        for protocol in [
            libc::NETLINK_KOBJECT_UEVENT,
            libc::NETLINK_AUDIT,
            libc::NETLINK_SOCK_DIAG,
            libc::NETLINK_NETFILTER,
            libc::NETLINK_XFRM,
            libc::NETLINK_GENERIC,
            -1,
        ] {
            assert_eq!(socket(libc::AF_NETLINK, protocol), EAFNOSUPPORT, "netlink protocol {protocol}");
        }
    }

    #[test]
    fn socket_arguments_are_read_as_int() {
        // The kernel truncates to `int`: garbage in the high words changes nothing, either way.
        let high = 0xdead_beef_0000_0000;
        let with_high = |family: i32, protocol: i32| {
            verdict(libc::SYS_socket, &[high | family as u64, 1, high | protocol as u64])
        };
        assert_eq!(with_high(libc::AF_UNIX, 0), SECCOMP_RET_ALLOW);
        assert_eq!(with_high(libc::AF_NETLINK, libc::NETLINK_ROUTE), SECCOMP_RET_ALLOW);
        assert_eq!(with_high(libc::AF_VSOCK, 0), EAFNOSUPPORT);
        assert_eq!(with_high(libc::AF_NETLINK, libc::NETLINK_AUDIT), EAFNOSUPPORT);
        assert_eq!(verdict(libc::SYS_socketpair, &[high | libc::AF_UNIX as u64]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(libc::SYS_socketpair, &[high | libc::AF_VSOCK as u64]), EAFNOSUPPORT);
    }

    #[test]
    fn foreign_architectures_are_killed() {
        let f = Filter::new();
        let i386 = SeccompData { nr: 1, arch: 0x4000_0003, args: [0; 6] };
        assert_eq!(f.run(&i386), SECCOMP_RET_KILL_PROCESS);
        #[cfg(target_arch = "x86_64")]
        {
            let x32 = SeccompData { nr: 0x4000_0000 + 1, arch: NATIVE_ARCH, args: [0; 6] };
            assert_eq!(f.run(&x32), SECCOMP_RET_KILL_PROCESS);
        }
    }
}
