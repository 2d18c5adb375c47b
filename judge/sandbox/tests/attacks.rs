//! The attack battery: hostile programs and what the sandbox must make of them.
//!
//! Each case is a row: a program (shell, Python or C), the limits it runs under, and the checks
//! on its result. After every case no process of the box's host user may be left, and after
//! the whole table the host must be untouched: the test's sentinel process alive, its loopback
//! listener never connected to, its secret file unread, no file written outside the box.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use judge_sandbox::{Limits, RunResult, RunSpec, Sandbox, SandboxConfig, Status};
use support::{compile_c, install, processes_of, scratch};

/// What a hostile program is written in.
#[derive(Clone, Copy)]
enum Prog {
    Sh(&'static str),
    /// A program run directly, with arguments.
    Bin(&'static [&'static str]),
    Py(&'static str),
    /// A C program: a name and its source.
    C(&'static str, &'static str),
}

/// One check on a result.
#[derive(Clone, Copy, Debug)]
enum Check {
    Status(Status),
    StatusIn(&'static [Status]),
    Stdout(&'static str),
    StdoutLen(usize),
    /// stdout is a number in this inclusive range.
    Count(u64, u64),
    Signal(i32),
    Truncated,
    Message(&'static str),
    /// CPU time in this range of seconds.
    CpuBetween(f64, f64),
}

struct Case {
    name: &'static str,
    prog: Prog,
    limits: fn(&mut Limits),
    env: &'static [(&'static str, &'static str)],
    checks: &'static [Check],
}

fn defaults(_: &mut Limits) {}

const FORK_BOMB: &str = "#include <unistd.h>\nint main(void) { for (;;) fork(); }\n";

const MALLOC_BOMB: &str = r#"
#include <stdlib.h>
#include <string.h>
int main(void) {
    for (;;) {
        char *p = malloc(1 << 20);
        if (!p) return 3;
        memset(p, 1, 1 << 20);
    }
}
"#;

const MMAP_BOMB: &str = r#"
#include <sys/mman.h>
int main(void) {
    for (;;) {
        void *p = mmap(0, 16 << 20, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (p == MAP_FAILED) return 3;
    }
}
"#;

const STACK_BOMB: &str = r#"
int deep(int n) { volatile char frame[4096]; frame[0] = (char)n; return deep(n + 1) + frame[0]; }
int main(void) { return deep(0); }
"#;

const CPU_LOOP: &str = "int main(void) { for (;;) {} }\n";

const THREAD_BOMB: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void *idle(void *arg) { (void)arg; pause(); return 0; }
int main(void) {
    int n = 0;
    pthread_t t;
    while (n < 100000 && pthread_create(&t, 0, idle, 0) == 0) n++;
    printf("%d\n", n);
    return 0;
}
"#;

const PROCESS_COUNT: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) {
    int n = 0;
    for (int i = 0; i < 100000; i++) {
        pid_t p = fork();
        if (p == 0) { pause(); _exit(0); }
        if (p < 0) break;
        n++;
    }
    printf("%d\n", n);
    return 0;
}
"#;

const FILE_SIZE: &str = r#"
#include <stdio.h>
int main(void) {
    FILE *f = fopen("big", "w");
    static char block[4096];
    for (int i = 0; i < 1024; i++) fwrite(block, 1, sizeof block, f);
    fclose(f);
    return 0;
}
"#;

const FD_EXHAUSTION: &str = r#"
#include <fcntl.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    while (n < 1000000 && open("/dev/null", O_RDONLY) >= 0) n++;
    printf("%d\n", n);
    return 0;
}
"#;

const KILL_EVERYTHING: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
int main(void) {
    int r = kill(1, SIGKILL);
    printf("kill 1: %s\n", r == 0 ? "ok" : strerror(errno));
    r = kill(-1, SIGKILL);
    /* Linux spares the caller of kill(-1): it only had itself to kill. */
    printf("kill -1: %s\n", r == 0 ? "ok" : strerror(errno));
    return 0;
}
"#;

const PTRACE: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
int main(void) {
    long r = ptrace(PTRACE_TRACEME, 0, 0, 0);
    printf("traceme: %s\n", r == 0 ? "ok" : strerror(errno));
    r = ptrace(PTRACE_ATTACH, 1, 0, 0);
    printf("attach: %s\n", r == 0 ? "ok" : strerror(errno));
    return 0;
}
"#;

const MOUNT: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>
int main(void) {
    int r = mount("none", "/tmp", "tmpfs", 0, 0);
    printf("mount: %s\n", r == 0 ? "ok" : strerror(errno));
    r = umount2("/proc", MNT_DETACH);
    printf("umount: %s\n", r == 0 ? "ok" : strerror(errno));
    r = chroot("/tmp");
    printf("chroot: %s\n", r == 0 ? "ok" : strerror(errno));
    return 0;
}
"#;

const NAMESPACES: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static const char *res(long r) { return r >= 0 ? "ok" : strerror(errno); }
int main(void) {
    printf("unshare user: %s\n", res(unshare(CLONE_NEWUSER)));
    printf("unshare mount: %s\n", res(unshare(CLONE_NEWNS)));
    int fd = open("/proc/self/ns/net", O_RDONLY);
    printf("setns: %s\n", res(setns(fd, 0)));
    long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    printf("clone newuser: %s\n", res(r));
    static char args[88];
    r = syscall(SYS_clone3, args, sizeof args);
    if (r == 0) _exit(0);
    printf("clone3: %s\n", res(r));
    return 0;
}
"#;

const KEYRINGS: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    long r = syscall(SYS_keyctl, 0, -3, 0);
    printf("keyctl: %s\n", r >= 0 ? "ok" : strerror(errno));
    r = syscall(SYS_add_key, "user", "verdict", "secret", 6, -2);
    printf("add_key: %s\n", r >= 0 ? "ok" : strerror(errno));
    return 0;
}
"#;

const IO_URING: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    static char params[120];
    long r = syscall(SYS_io_uring_setup, 4, params);
    printf("io_uring_setup: %s\n", r >= 0 ? "ok" : strerror(errno));
    return 0;
}
"#;

const KERNEL_SURFACE: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    static char buf[256];
    struct { const char *name; long nr; long a, b, c, d, e; } calls[] = {
        {"bpf", SYS_bpf, 0, (long)buf, 128, 0, 0},
        {"perf_event_open", SYS_perf_event_open, (long)buf, 0, -1, -1, 0},
        {"userfaultfd", SYS_userfaultfd, 0, 0, 0, 0, 0},
        {"personality", SYS_personality, 0x0040000, 0, 0, 0, 0},
        {"reboot", SYS_reboot, 0xfee1dead, 672274793, 0x4321fedc, 0, 0},
        {"kexec_load", SYS_kexec_load, 0, 0, 0, 0, 0},
        {"init_module", SYS_init_module, (long)buf, 16, (long)"", 0, 0},
        {"delete_module", SYS_delete_module, (long)"x", 0, 0, 0, 0},
        {"swapon", SYS_swapon, (long)"/box/swap", 0, 0, 0, 0},
        {"syslog", SYS_syslog, 3, (long)buf, 64, 0, 0},
        {"clock_settime", SYS_clock_settime, 0, (long)buf, 0, 0, 0},
        {"settimeofday", SYS_settimeofday, (long)buf, 0, 0, 0, 0},
        {"acct", SYS_acct, (long)"/tmp/acct", 0, 0, 0, 0},
        {"process_vm_readv", SYS_process_vm_readv, 1, (long)buf, 1, (long)buf, 1},
        {"open_by_handle_at", SYS_open_by_handle_at, 0, (long)buf, 0, 0, 0},
        {"mq_open", SYS_mq_open, (long)"q", 0100, 0600, 0, 0},
        {"sethostname", SYS_sethostname, (long)"x", 1, 0, 0, 0},
    };
    for (unsigned i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        errno = 0;
        long r = syscall(calls[i].nr, calls[i].a, calls[i].b, calls[i].c, calls[i].d, calls[i].e);
        if (r != -1 || errno != EPERM) printf("%s: r=%ld errno=%d\n", calls[i].name, r, errno);
    }
    printf("done\n");
    return 0;
}
"#;

const INT80: &str = r#"
#include <stdio.h>
int main(void) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    printf("i386 getpid returned %ld\n", r);
    return 0;
}
"#;

const X32: &str = r#"
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    long r = syscall(0x40000000L | 39);
    printf("x32 getpid returned %ld\n", r);
    return 0;
}
"#;

const SUID_EUID: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("%d\n", (int)geteuid()); return 0; }
"#;

const SOCKET_FAMILIES: &str = r#"
#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef AF_XDP
#define AF_XDP 44
#endif
static const char *name(int e) {
    switch (e) {
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EINVAL: return "EINVAL";
    default: return 0;
    }
}
static void report(const char *what, long r) {
    int e = errno;
    if (r >= 0) printf("%s: ok\n", what);
    else if (name(e)) printf("%s: %s\n", what, name(e));
    else printf("%s: errno %d\n", what, e);
}
int main(void) {
    /* The family and protocol are ints: high bits must not change what the filter sees. */
    const long high = 1L << 32;
    struct { const char *what; long family, type, protocol; } calls[] = {
        {"vsock", AF_VSOCK, SOCK_STREAM, 0},
        {"vsock high bits", high | AF_VSOCK, SOCK_STREAM, 0},
        {"alg", AF_ALG, SOCK_SEQPACKET, 0},
        {"packet", AF_PACKET, SOCK_RAW, 0x0300},
        {"key", AF_KEY, SOCK_RAW, 2},
        {"xdp", AF_XDP, SOCK_RAW, 0},
        {"tipc", AF_TIPC, SOCK_RDM, 0},
        {"netlink uevent", AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT},
        {"netlink audit", AF_NETLINK, SOCK_RAW, NETLINK_AUDIT},
        {"netlink sock_diag", AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG},
        {"netlink route high bits", AF_NETLINK, SOCK_RAW, high | NETLINK_ROUTE},
        {"unix", AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0},
        {"unix high bits", high | AF_UNIX, SOCK_DGRAM, 0},
        {"inet", AF_INET, SOCK_STREAM, 0},
        {"inet6", AF_INET6, SOCK_DGRAM, 0},
        {"netlink route", AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE},
    };
    for (unsigned i = 0; i < sizeof calls / sizeof calls[0]; i++)
        report(calls[i].what, syscall(SYS_socket, calls[i].family, calls[i].type, calls[i].protocol));
    int sv[2];
    report("socketpair inet", socketpair(AF_INET, SOCK_STREAM, 0, sv));
    report("socketpair vsock", socketpair(AF_VSOCK, SOCK_STREAM, 0, sv));
    report("socketpair unix", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    return 0;
}
"#;

/// The table. `{SECRET}`, `{PORT}` and `{SENTINEL}` are filled in at run time.
const CASES: &[Case] = &[
    Case {
        name: "fork bomb",
        prog: Prog::C("fork_bomb", FORK_BOMB),
        limits: |l| {
            l.processes = 20;
            l.cpu_time = Duration::from_millis(500);
            l.wall_time = Duration::from_secs(3);
        },
        env: &[],
        checks: &[Check::StatusIn(&[Status::TimeLimit, Status::WallTimeLimit])],
    },
    Case {
        name: "memory bomb: malloc and touch",
        prog: Prog::C("malloc_bomb", MALLOC_BOMB),
        limits: |l| l.memory_kb = 64_000,
        env: &[],
        checks: &[
            Check::Status(Status::MemoryLimit),
            Check::Signal(9),
            Check::Message("Memory limit exceeded"),
        ],
    },
    Case {
        name: "memory bomb: mmap populate",
        prog: Prog::C("mmap_bomb", MMAP_BOMB),
        limits: |l| l.memory_kb = 64_000,
        env: &[],
        checks: &[Check::Status(Status::MemoryLimit)],
    },
    Case {
        name: "memory bomb: stack under the stack limit",
        prog: Prog::C("stack_bomb", STACK_BOMB),
        limits: |l| l.stack_kb = 8192,
        env: &[],
        checks: &[Check::Status(Status::Signalled), Check::Signal(libc::SIGSEGV)],
    },
    Case {
        name: "memory bomb: unlimited stack meets the memory limit",
        prog: Prog::C("stack_bomb", STACK_BOMB),
        limits: |l| {
            l.stack_kb = 0;
            l.memory_kb = 64_000;
        },
        env: &[],
        checks: &[Check::Status(Status::MemoryLimit)],
    },
    Case {
        name: "CPU loop",
        prog: Prog::C("cpu_loop", CPU_LOOP),
        limits: |l| {
            l.cpu_time = Duration::from_secs(1);
            l.extra_time = Duration::from_millis(200);
        },
        env: &[],
        checks: &[
            Check::Status(Status::TimeLimit),
            Check::CpuBetween(1.0, 2.5),
            Check::Message("Time limit exceeded"),
        ],
    },
    Case {
        name: "sleep past the wall time",
        prog: Prog::Sh("sleep 30"),
        limits: |l| l.wall_time = Duration::from_secs(1),
        env: &[],
        checks: &[Check::Status(Status::WallTimeLimit), Check::Message("Wall time limit exceeded")],
    },
    Case {
        name: "thread bomb",
        prog: Prog::C("thread_bomb", THREAD_BOMB),
        limits: |l| l.processes = 10,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Count(1, 9)],
    },
    Case {
        name: "process limit counts every process",
        prog: Prog::C("process_count", PROCESS_COUNT),
        limits: |l| l.processes = 10,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Count(1, 9)],
    },
    Case {
        name: "output flood",
        prog: Prog::Sh("yes"),
        limits: |l| l.output_kb = 64,
        env: &[],
        checks: &[Check::Status(Status::OutputLimit), Check::StdoutLen(64 * 1024), Check::Truncated],
    },
    Case {
        name: "file size overflow",
        prog: Prog::C("file_size", FILE_SIZE),
        limits: |l| l.file_size_kb = 100,
        env: &[],
        checks: &[
            Check::Status(Status::Signalled),
            Check::Signal(libc::SIGXFSZ),
            Check::Message("File size limit"),
        ],
    },
    Case {
        name: "/tmp fill stops at its size",
        prog: Prog::Sh(
            "i=0; while head -c 524288 /dev/zero > /tmp/f$i 2>/dev/null; do i=$((i+1)); done; echo $i",
        ),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Count(8, 16)],
    },
    Case {
        name: "/box fill stops at its size",
        prog: Prog::Sh(
            "i=0; while head -c 524288 /dev/zero > /box/f$i 2>/dev/null; do i=$((i+1)); done; echo $i",
        ),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Count(16, 32)],
    },
    Case {
        name: "fd exhaustion",
        prog: Prog::C("fd_exhaustion", FD_EXHAUSTION),
        limits: |l| l.open_files = 32,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Count(20, 32)],
    },
    Case {
        name: "network: the test's loopback listener is unreachable",
        prog: Prog::Py(
            "import socket, errno\n\
             s = socket.socket(); s.settimeout(2)\n\
             try:\n    s.connect(('127.0.0.1', {PORT})); print('connected')\n\
             except OSError as e:\n    print('refused' if e.errno == errno.ECONNREFUSED else 'error %s' % e.errno)\n",
        ),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Stdout("refused\n")],
    },
    Case {
        name: "network: only lo exists",
        prog: Prog::Py("import socket\nprint(sorted(name for _, name in socket.if_nameindex()))\n"),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Stdout("['lo']\n")],
    },
    Case {
        // UDP connect() only looks up a route; nothing is sent anywhere.
        name: "network: no route to anywhere else",
        prog: Prog::Py(
            "import socket, errno\n\
             out = []\n\
             for addr in ('10.255.255.1', '93.184.216.34', '192.168.0.1'):\n\
             \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             \x20   try:\n        s.connect((addr, 53)); out.append('route')\n\
             \x20   except OSError as e:\n        out.append('unreachable' if e.errno == errno.ENETUNREACH else str(e.errno))\n\
             try:\n    socket.socket(socket.AF_PACKET, socket.SOCK_RAW); out.append('raw')\n\
             except OSError:\n    out.append('no-raw')\n\
             print(' '.join(out))\n\
             print(len(open('/proc/net/route').read().splitlines()))\n",
        ),
        limits: defaults,
        env: &[],
        checks: &[
            Check::Status(Status::Ok),
            Check::Stdout("unreachable unreachable unreachable no-raw\n1\n"),
        ],
    },
    Case {
        name: "host files are not there",
        prog: Prog::Sh(
            "for f in /etc/shadow {SECRET} /root /home /var /run /sys /srv /usr/../root; do \
             test -e $f && echo \"visible $f\"; done; \
             grep -c . /etc/passwd; echo done",
        ),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Stdout("3\ndone\n")],
    },
    Case {
        name: "kernel internals in /proc are masked",
        prog: Prog::Sh(
            "for f in /proc/kallsyms /proc/keys /proc/kcore /proc/timer_list /proc/kmsg; do \
             test -e $f && head -c 1 $f >/dev/null 2>&1 && echo \"read $f\"; done; \
             head -c 9 /proc/cpuinfo; echo",
        ),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Stdout("processor\n")],
    },
    Case {
        name: "nothing outside the box is writable",
        prog: Prog::Sh(
            "for d in / /usr /etc /bin /lib /dev /proc /proc/sys/kernel; do \
             touch $d/verdict-escape 2>/dev/null && echo \"wrote $d\"; done; \
             (echo pwned > /proc/sys/kernel/hostname) 2>/dev/null && echo 'wrote hostname'; \
             (echo 1 > /proc/sysrq-trigger) 2>/dev/null && echo 'wrote sysrq'; \
             touch /box/ok && touch /tmp/ok && echo done",
        ),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Stdout("done\n")],
    },
    Case {
        name: "host processes are invisible and out of reach",
        prog: Prog::Sh(
            "n=$(ls /proc | grep -c '^[0-9][0-9]*$'); [ \"$n\" -le 4 ] && echo few; \
             kill -9 {SENTINEL} 2>/dev/null && echo 'killed the sentinel'; \
             cat /proc/1/cmdline 2>/dev/null && echo 'read pid 1'; \
             cat /proc/1/environ 2>/dev/null && echo 'read the keeper environment'; \
             echo done",
        ),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Stdout("few\ndone\n")],
    },
    Case {
        name: "kill -1 and kill 1 reach only the program itself",
        prog: Prog::C("kill_everything", KILL_EVERYTHING),
        limits: defaults,
        env: &[],
        checks: &[
            Check::Status(Status::Ok),
            Check::Stdout("kill 1: Operation not permitted\nkill -1: No such process\n"),
        ],
    },
    Case {
        name: "ptrace",
        prog: Prog::C("ptrace", PTRACE),
        limits: defaults,
        env: &[],
        checks: &[Check::Stdout("traceme: Operation not permitted\nattach: Operation not permitted\n")],
    },
    Case {
        name: "mount, umount, chroot",
        prog: Prog::C("mount", MOUNT),
        limits: defaults,
        env: &[],
        checks: &[Check::Stdout(
            "mount: Operation not permitted\numount: Operation not permitted\nchroot: Operation not permitted\n",
        )],
    },
    Case {
        name: "unshare, setns, clone into namespaces",
        prog: Prog::C("namespaces", NAMESPACES),
        limits: defaults,
        env: &[],
        checks: &[Check::Stdout(
            "unshare user: Operation not permitted\nunshare mount: Operation not permitted\n\
             setns: Operation not permitted\nclone newuser: Operation not permitted\n\
             clone3: Function not implemented\n",
        )],
    },
    Case {
        name: "setuid-root binaries grant nothing",
        prog: Prog::Sh("ls -l /opt/suid/euid | cut -c1-10; /opt/suid/euid; id -u"),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Stdout("-rwsr-xr-x\n1000\n1000\n")],
    },
    Case {
        name: "keyctl and add_key",
        prog: Prog::C("keyrings", KEYRINGS),
        limits: defaults,
        env: &[],
        checks: &[Check::Stdout("keyctl: Operation not permitted\nadd_key: Operation not permitted\n")],
    },
    Case {
        name: "io_uring",
        prog: Prog::C("io_uring", IO_URING),
        limits: defaults,
        env: &[],
        checks: &[Check::Stdout("io_uring_setup: Operation not permitted\n")],
    },
    Case {
        name: "kernel surfaces: bpf, perf, userfaultfd, personality, modules, clock, ...",
        prog: Prog::C("kernel_surface", KERNEL_SURFACE),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Stdout("done\n")],
    },
    #[cfg(target_arch = "x86_64")]
    Case {
        name: "32-bit system calls kill the process",
        prog: Prog::C("int80", INT80),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Signalled), Check::Signal(libc::SIGSYS), Check::Stdout("")],
    },
    #[cfg(target_arch = "x86_64")]
    Case {
        name: "x32 system calls kill the process",
        prog: Prog::C("x32", X32),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Signalled), Check::Signal(libc::SIGSYS), Check::Stdout("")],
    },
    Case {
        name: "the environment is exactly what the caller passed",
        prog: Prog::Bin(&["/usr/bin/env"]),
        limits: defaults,
        env: &[("VERDICT_CASE", "env")],
        checks: &[
            Check::Status(Status::Ok),
            Check::Stdout("PATH=/usr/local/bin:/usr/bin:/bin\nVERDICT_CASE=env\n"),
        ],
    },
    Case {
        name: "mountinfo shows no path of the host's run directory",
        prog: Prog::Sh("grep -c '{RUNDIR}' /proc/self/mountinfo; grep -c ' /etc ' /proc/self/mountinfo"),
        limits: defaults,
        env: &[],
        checks: &[Check::Stdout("0\n0\n")],
    },
    Case {
        name: "host-wide load and memory in /proc are static, other host activity masked",
        prog: Prog::Sh(
            "cat /proc/loadavg; head -n 1 /proc/stat; \
             awk '/^(MemTotal|MemFree|MemAvailable):/ {print $2}' /proc/meminfo | uniq | wc -l; \
             for f in vmstat diskstats interrupts locks zoneinfo; do \
             cat /proc/$f >/dev/null 2>&1 && echo \"read $f\"; done; echo done",
        ),
        limits: defaults,
        env: &[],
        checks: &[
            Check::Status(Status::Ok),
            Check::Stdout("0.00 0.00 0.00 1/1 1\ncpu  0 0 0 0 0 0 0 0 0 0\n1\ndone\n"),
        ],
    },
    Case {
        name: "daemons, double forks and setsid do not outlive the run",
        prog: Prog::Sh(
            "setsid sh -c 'sleep 1000 & sleep 1000 &'; (sleep 1000 &); \
             nohup sleep 1000 >/dev/null 2>&1 & echo started",
        ),
        limits: defaults,
        env: &[],
        checks: &[Check::Status(Status::Ok), Check::Stdout("started\n")],
    },
    Case {
        name: "sockets: only unix, inet, inet6 and netlink routing",
        prog: Prog::C("socket_families", SOCKET_FAMILIES),
        limits: defaults,
        env: &[],
        checks: &[
            Check::Status(Status::Ok),
            Check::Stdout(
                "vsock: EAFNOSUPPORT\nvsock high bits: EAFNOSUPPORT\nalg: EAFNOSUPPORT\n\
                 packet: EAFNOSUPPORT\nkey: EAFNOSUPPORT\nxdp: EAFNOSUPPORT\n\
                 tipc: EAFNOSUPPORT\nnetlink uevent: EAFNOSUPPORT\n\
                 netlink audit: EAFNOSUPPORT\nnetlink sock_diag: EAFNOSUPPORT\n\
                 netlink route high bits: ok\nunix: ok\nunix high bits: ok\ninet: ok\ninet6: ok\n\
                 netlink route: ok\nsocketpair inet: EAFNOSUPPORT\n\
                 socketpair vsock: EAFNOSUPPORT\nsocketpair unix: ok\n",
            ),
        ],
    },
];

/// Host state every case is checked against.
struct Host {
    secret: String,
    listener: TcpListener,
    sentinel: Child,
}

impl Host {
    fn new() -> Self {
        let secret_path = scratch().join("secret.txt");
        std::fs::write(&secret_path, "TOP-SECRET").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let sentinel = Command::new("sleep").arg("1000").spawn().unwrap();
        Self { secret: secret_path.display().to_string(), listener, sentinel }
    }

    fn fill(&self, text: &str) -> String {
        text.replace("{SECRET}", &self.secret)
            .replace("{PORT}", &self.listener.local_addr().unwrap().port().to_string())
            .replace("{SENTINEL}", &self.sentinel.id().to_string())
            .replace("{RUNDIR}", &scratch().join("run").display().to_string())
    }
}

fn sandbox() -> &'static Sandbox {
    support::sandbox_with(|config| {
        config.tmp_kb = 8 * 1024;
        config.box_kb = 16 * 1024;
        let suid = scratch().join("suid");
        std::fs::create_dir_all(&suid).unwrap();
        let euid = compile_c("euid", SUID_EUID);
        let target = suid.join("euid");
        std::fs::copy(euid, &target).unwrap();
        std::os::unix::fs::chown(&target, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
        config.binds.push(support::bind(&suid, "/opt/suid"));
    })
}

fn check(result: &RunResult, c: Check) -> Result<(), String> {
    let stdout = String::from_utf8_lossy(&result.stdout);
    let ok = match c {
        Check::Status(s) => result.status == s,
        Check::StatusIn(list) => list.contains(&result.status),
        Check::Stdout(s) => stdout == s,
        Check::StdoutLen(n) => result.stdout.len() == n,
        Check::Count(lo, hi) => stdout.trim().parse::<u64>().is_ok_and(|n| (lo..=hi).contains(&n)),
        Check::Signal(s) => result.signal == Some(s),
        Check::Truncated => result.stdout_truncated,
        Check::Message(m) => result.message.contains(m),
        Check::CpuBetween(lo, hi) => (lo..=hi).contains(&result.cpu_time.as_secs_f64()),
    };
    if ok { Ok(()) } else { Err(format!("{c:?} failed")) }
}

fn run_case(sandbox: &Sandbox, host: &Host, case: &Case) -> Result<(), String> {
    let mut lease = sandbox.lease().map_err(|e| format!("lease: {e}"))?;
    let mut spec = match case.prog {
        Prog::Sh(script) => RunSpec::new("/bin/sh").args(["-c".to_owned(), host.fill(script)]),
        Prog::Bin(argv) => RunSpec::new(argv[0]).args(argv[1..].iter().copied()),
        Prog::Py(script) => RunSpec::new("python3").args(["-c".to_owned(), host.fill(script)]),
        Prog::C(name, source) => {
            install(&lease, &compile_c(name, source), name);
            RunSpec::new(format!("./{name}"))
        }
    };
    for (k, v) in case.env {
        spec = spec.env(*k, *v);
    }
    (case.limits)(&mut spec.limits);
    let result = lease.run(&spec).map_err(|e| format!("sandbox error: {e}"))?;
    let mut problems: Vec<String> = case.checks.iter().filter_map(|c| check(&result, *c).err()).collect();
    let left = processes_of(lease.host_uid());
    if !left.is_empty() {
        problems.push(format!("processes left behind: {left:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n    status {:?} signal {:?} exit {:?} cpu {:?} message {:?}\n    stdout {:?}\n    stderr {:?}",
            problems.join("; "),
            result.status,
            result.signal,
            result.exit_code,
            result.cpu_time,
            result.message,
            String::from_utf8_lossy(&result.stdout[..result.stdout.len().min(300)]),
            String::from_utf8_lossy(&result.stderr[..result.stderr.len().min(300)]),
        ))
    }
}

#[test]
fn attack_battery() {
    let sandbox = sandbox();
    let mut host = Host::new();
    let next = AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = CASES.get(i) else { break };
                    let outcome = run_case(sandbox, &host, case);
                    eprintln!("{} {}", if outcome.is_ok() { "ok  " } else { "FAIL" }, case.name);
                    if let Err(why) = outcome {
                        failures.lock().unwrap().push(format!("{}: {why}", case.name));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    if host.sentinel.try_wait().unwrap().is_some() {
        failures.push("the host's sentinel process was killed".into());
    }
    match host.listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => failures.push(format!("the host's loopback listener saw a connection: {other:?}")),
    }
    for path in ["/verdict-escape", "/usr/verdict-escape", "/etc/verdict-escape", "/bin/verdict-escape"] {
        if Path::new(path).exists() {
            failures.push(format!("{path} was written on the host"));
        }
    }
    host.sentinel.kill().unwrap();
    host.sentinel.wait().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn runs_in_one_box_share_files_and_nothing_else() {
    let mut lease = sandbox().lease().unwrap();
    let first = RunSpec::new("/bin/sh").args([
        "-c",
        "echo kept > /box/kept; echo gone > /tmp/gone; ipcmk -M 4096 >/dev/null; ipcmk -S 2 >/dev/null; \
         ipcmk -Q >/dev/null; (sleep 1000 &); echo ok",
    ]);
    let result = support::run(&mut lease, &first);
    assert_eq!((result.status, result.stdout.as_slice()), (Status::Ok, &b"ok\n"[..]), "{}", result.message);
    let second = RunSpec::new("/bin/sh").args([
        "-c",
        "cat /box/kept; ls -A /tmp | wc -l; ipcs -m | grep -c sandbox; ipcs -s | grep -c sandbox; \
         ipcs -q | grep -c sandbox; ls /proc | grep -c '^[0-9][0-9]*$'",
    ]);
    let result = support::run(&mut lease, &second);
    // The last count is this shell's own pipeline: sh, ls and grep.
    assert_eq!(String::from_utf8_lossy(&result.stdout), "kept\n0\n0\n0\n0\n3\n", "{}", result.message);
}

#[test]
fn a_new_lease_starts_with_an_empty_box() {
    let sandbox = sandbox();
    for _ in 0..3 {
        let mut lease = sandbox.lease().unwrap();
        let spec = RunSpec::new("/bin/sh").args(["-c", "ls -A /box | wc -l; echo x > /box/leftover"]);
        let result = support::run(&mut lease, &spec);
        assert_eq!(String::from_utf8_lossy(&result.stdout), "0\n");
    }
}

/// A program that leaves a directory chain as deep as the box's inodes allow, in `/box` and in
/// `/tmp`. Removing it must not recurse on the host's stack: the host here is a thread with a
/// small stack, as a worker's blocking thread is.
#[test]
fn a_chain_of_sixteen_thousand_directories_is_wiped_on_a_small_stack() {
    let deep = RunSpec::new("python3").args([
        "-c",
        "import os\n\
         for top in ('/box', '/tmp'):\n\
         \x20   os.chdir(top)\n\
         \x20   for _ in range(16000):\n\
         \x20       os.mkdir('d'); os.chdir('d')\n\
         \x20   open('x', 'w').write('deep')\n\
         print('built')\n",
    ]);
    let worker = std::thread::Builder::new().stack_size(128 * 1024).spawn(move || {
        let mut lease = sandbox().lease().unwrap();
        let result = support::run(&mut lease, &deep);
        assert_eq!(
            result.status,
            Status::Ok,
            "{} {}",
            result.message,
            String::from_utf8_lossy(&result.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&result.stdout), "built\n");
        // /tmp was emptied after the run, /box is emptied now.
        let check = RunSpec::new("/bin/sh").args(["-c", "ls -A /tmp | wc -l; ls /box"]);
        assert_eq!(support::run(&mut lease, &check).stdout, b"0\nd\n");
        drop(lease);
        let mut lease = sandbox().lease().unwrap();
        assert_eq!(support::run(&mut lease, &RunSpec::new("/bin/ls").args(["-A", "/box"])).stdout, b"");
    });
    worker.unwrap().join().expect("the host side survived the wipe");
}

/// Everything a program can change on `/box` itself as its owner: mode, times, extended
/// attributes (and ACLs), inode flags. None of it may reach the next lease of the same box,
/// and the box must stay usable (a `chmod 000` once made every later lease fail).
#[test]
fn the_box_root_is_reset_for_the_next_lease() {
    let config =
        SandboxConfig { run_dir: scratch().join("run-reset"), max_idle: 1, ..SandboxConfig::default() };
    let sandbox = Sandbox::new(config).unwrap();
    let fresh = {
        let mut lease = sandbox.lease().unwrap();
        let look = support::run(&mut lease, &RunSpec::new("python3").args(["-c", LOOK_AT_BOX]));
        (lease.box_dir().to_owned(), look.stdout)
    };
    let poison = RunSpec::new("python3").args([
        "-c",
        "import os, fcntl, struct\n\
         os.setxattr('/box', 'user.secret', b'hidden stdin ' * 300)\n\
         os.system('setfacl -m u:0:rwx /box 2>/dev/null')\n\
         fd = os.open('/box', os.O_RDONLY)\n\
         try:\n    fcntl.ioctl(fd, 0x40086602, struct.pack('l', 0x80 | 0x40))\n\
         except OSError:\n    pass\n\
         os.utime('/box', (123456789, 987654321))\n\
         os.chmod('/box', 0o3000)\n\
         print('poisoned')\n",
    ]);
    {
        let mut lease = sandbox.lease().unwrap();
        assert_eq!(lease.box_dir(), fresh.0, "the pool hands the same box out again");
        let result = support::run(&mut lease, &poison);
        assert_eq!(result.stdout, b"poisoned\n", "{}", String::from_utf8_lossy(&result.stderr));
    }
    let mut lease = sandbox.lease().unwrap();
    assert_eq!(lease.box_dir(), fresh.0, "the box was reset and reused, not replaced");
    let look = support::run(&mut lease, &RunSpec::new("python3").args(["-c", LOOK_AT_BOX]));
    assert_eq!(String::from_utf8_lossy(&look.stdout), String::from_utf8_lossy(&fresh.1));
    lease.write_file(Path::new("main.py"), b"print('usable')", false).unwrap();
    let result = support::run(&mut lease, &RunSpec::new("python3").args(["main.py"]));
    assert_eq!(result.stdout, b"usable\n", "{}", result.message);
}

/// What a program can see of `/box` itself (its atime only as planted or not: reading the
/// directory, as Python's start-up does, moves it to the present).
const LOOK_AT_BOX: &str = "import os, fcntl, struct\n\
st = os.stat('/box')\n\
fd = os.open('/box', os.O_RDONLY)\n\
try:\n    flags = struct.unpack('l', fcntl.ioctl(fd, 0x80086601, b'\\0' * 8))[0]\n\
except OSError:\n    flags = None\n\
print(oct(st.st_mode), st.st_uid, st.st_gid, st.st_atime == 123456789, st.st_mtime_ns, os.listxattr('/box'), flags)\n";

/// Process ids say nothing about earlier runs: every run's program is pid 2 of its box.
#[test]
fn every_run_starts_pid_numbering_afresh() {
    let spec = RunSpec::new("/bin/sh").args(["-c", "echo $$; for i in 1 2 3 4 5 6 7 8; do /bin/true; done"]);
    for _ in 0..2 {
        let mut lease = sandbox().lease().unwrap();
        for _ in 0..3 {
            assert_eq!(String::from_utf8_lossy(&support::run(&mut lease, &spec).stdout), "2\n");
        }
    }
}

#[test]
fn host_writes_never_follow_symlinks_planted_in_the_box() {
    let mut lease = sandbox().lease().unwrap();
    let plant = RunSpec::new("/bin/sh")
        .args(["-c", "ln -s /etc/passwd /box/evil && ln -s /etc /box/dir && echo planted"]);
    assert_eq!(support::run(&mut lease, &plant).stdout, b"planted\n");
    let before = std::fs::read("/etc/passwd").unwrap();
    assert!(lease.write_file(Path::new("evil"), b"pwned", false).is_err());
    assert!(lease.write_file(Path::new("dir/passwd"), b"pwned", false).is_err());
    assert!(lease.write_file(Path::new("../escape"), b"pwned", false).is_err());
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), before);
    lease.write_file(Path::new("sub/dir/fine.txt"), b"fine", false).unwrap();
    let read = RunSpec::new("/bin/cat").args(["sub/dir/fine.txt"]);
    assert_eq!(support::run(&mut lease, &read).stdout, b"fine");
}

#[test]
fn the_keeper_survives_a_program_that_kills_everything() {
    let mut lease = sandbox().lease().unwrap();
    install(&lease, &compile_c("kill_everything", KILL_EVERYTHING), "kill_everything");
    let result = support::run(&mut lease, &RunSpec::new("./kill_everything"));
    assert_eq!(result.stdout, b"kill 1: Operation not permitted\nkill -1: No such process\n");
    let result = support::run(&mut lease, &RunSpec::new("/bin/echo").args(["still here"]));
    assert_eq!((result.status, result.stdout.as_slice()), (Status::Ok, &b"still here\n"[..]));
}

#[test]
fn stdin_bytes_and_stderr_are_delivered_and_bounded() {
    let mut lease = sandbox().lease().unwrap();
    let mut spec = RunSpec::new("/bin/sh")
        .args(["-c", "cat; echo err >&2; head -c 100000 /dev/zero >&2"])
        .stdin(judge_sandbox::Stdin::Bytes(b"line one\nline two\n".to_vec()));
    spec.limits.output_kb = 64;
    let result = support::run(&mut lease, &spec);
    assert_eq!(result.stdout, b"line one\nline two\n");
    assert_eq!(result.stderr.len(), 64 * 1024);
    assert!(result.stderr.starts_with(b"err\n"));
    assert!(result.stderr_truncated && !result.stdout_truncated);
    assert_eq!(result.status, Status::OutputLimit);
    spec.stderr_to_stdout = true;
    spec.limits.output_kb = 1024;
    let result = support::run(&mut lease, &spec);
    assert_eq!(result.status, Status::Ok);
    assert!(result.stdout.starts_with(b"line one\nline two\nerr\n"));
    assert_eq!(result.stdout.len(), 18 + 4 + 100_000);
    assert!(result.stderr.is_empty());
}

#[test]
fn exit_codes_signals_and_missing_programs_are_reported() {
    let mut lease = sandbox().lease().unwrap();
    let result = support::run(&mut lease, &RunSpec::new("/bin/sh").args(["-c", "exit 3"]));
    assert_eq!((result.status, result.exit_code), (Status::NonZeroExit, Some(3)));
    let result = support::run(&mut lease, &RunSpec::new("/bin/sh").args(["-c", "kill -SEGV $$"]));
    assert_eq!((result.status, result.signal), (Status::Signalled, Some(libc::SIGSEGV)));
    assert!(result.message.contains("SIGSEGV"), "{}", result.message);
    let result = support::run(&mut lease, &RunSpec::new("no-such-program"));
    assert_eq!(result.status, Status::InternalError);
    assert!(result.message.contains("No such file"), "{}", result.message);
    let result = support::run(&mut lease, &RunSpec::new("true"));
    assert_eq!(result.status, Status::Ok, "PATH lookup: {}", result.message);
}
