/* The RuntimeDefault seccomp profile as data.
 *
 * The syscall set follows the well-known Docker/containerd default profile
 * (the facts kubelet users expect from "RuntimeDefault"), grouped here by
 * what the calls do. Anything not listed fails with EPERM. Names that the
 * host's libseccomp does not know are dropped when the profile is built. */
#include <sys/capability.h>

#include "oci/oci-internal.h"

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ANY_ARCH 0u
#define NO_CAP (-1)

/* File system and file descriptor calls. */
static const char *const sc_files[] = {"access",
                                       "chdir",
                                       "chmod",
                                       "chown",
                                       "chown32",
                                       "close",
                                       "close_range",
                                       "copy_file_range",
                                       "creat",
                                       "dup",
                                       "dup2",
                                       "dup3",
                                       "faccessat",
                                       "faccessat2",
                                       "fadvise64",
                                       "fadvise64_64",
                                       "fallocate",
                                       "fanotify_mark",
                                       "fchdir",
                                       "fchmod",
                                       "fchmodat",
                                       "fchown",
                                       "fchown32",
                                       "fchownat",
                                       "fcntl",
                                       "fcntl64",
                                       "fdatasync",
                                       "fgetxattr",
                                       "flistxattr",
                                       "flock",
                                       "fremovexattr",
                                       "fsetxattr",
                                       "fstat",
                                       "fstat64",
                                       "fstatat64",
                                       "fstatfs",
                                       "fstatfs64",
                                       "fsync",
                                       "ftruncate",
                                       "ftruncate64",
                                       "futimesat",
                                       "getcwd",
                                       "getdents",
                                       "getdents64",
                                       "getxattr",
                                       "inotify_add_watch",
                                       "inotify_init",
                                       "inotify_init1",
                                       "inotify_rm_watch",
                                       "lchown",
                                       "lchown32",
                                       "lgetxattr",
                                       "link",
                                       "linkat",
                                       "listxattr",
                                       "llistxattr",
                                       "_llseek",
                                       "lremovexattr",
                                       "lseek",
                                       "lsetxattr",
                                       "lstat",
                                       "lstat64",
                                       "mkdir",
                                       "mkdirat",
                                       "mknod",
                                       "mknodat",
                                       "name_to_handle_at",
                                       "newfstatat",
                                       "open",
                                       "openat",
                                       "openat2",
                                       "pread64",
                                       "preadv",
                                       "preadv2",
                                       "pwrite64",
                                       "pwritev",
                                       "pwritev2",
                                       "read",
                                       "readahead",
                                       "readlink",
                                       "readlinkat",
                                       "readv",
                                       "removexattr",
                                       "rename",
                                       "renameat",
                                       "renameat2",
                                       "rmdir",
                                       "sendfile",
                                       "sendfile64",
                                       "setxattr",
                                       "splice",
                                       "stat",
                                       "stat64",
                                       "statfs",
                                       "statfs64",
                                       "statx",
                                       "symlink",
                                       "symlinkat",
                                       "sync",
                                       "sync_file_range",
                                       "syncfs",
                                       "tee",
                                       "truncate",
                                       "truncate64",
                                       "umask",
                                       "unlink",
                                       "unlinkat",
                                       "utime",
                                       "utimensat",
                                       "utimensat_time64",
                                       "utimes",
                                       "vmsplice",
                                       "write",
                                       "writev",
                                       NULL};

/* Waiting on descriptors, event and timer descriptors, async I/O. */
static const char *const sc_events[] = {"epoll_create",
                                        "epoll_create1",
                                        "epoll_ctl",
                                        "epoll_ctl_old",
                                        "epoll_pwait",
                                        "epoll_pwait2",
                                        "epoll_wait",
                                        "epoll_wait_old",
                                        "eventfd",
                                        "eventfd2",
                                        "io_cancel",
                                        "io_destroy",
                                        "io_getevents",
                                        "io_pgetevents",
                                        "io_pgetevents_time64",
                                        "io_setup",
                                        "io_submit",
                                        "io_uring_enter",
                                        "io_uring_register",
                                        "io_uring_setup",
                                        "ioctl",
                                        "memfd_create",
                                        "memfd_secret",
                                        "pipe",
                                        "pipe2",
                                        "poll",
                                        "ppoll",
                                        "ppoll_time64",
                                        "pselect6",
                                        "pselect6_time64",
                                        "select",
                                        "_newselect",
                                        "signalfd",
                                        "signalfd4",
                                        "timerfd_create",
                                        "timerfd_gettime",
                                        "timerfd_gettime64",
                                        "timerfd_settime",
                                        "timerfd_settime64",
                                        NULL};

/* Processes, credentials, scheduling, limits. */
static const char *const sc_process[] = {
    "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "vfork", "getcpu",
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "get_thread_area", "gettid", "getuid", "getuid32", "ioprio_get",
    "ioprio_set", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
    "pidfd_open", "pidfd_send_signal", "prctl", "prlimit64", "process_mrelease", "restart_syscall",
    "rseq", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setpgid", "setpriority",
    "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid",
    "setreuid32", "setrlimit", "set_robust_list", "setsid", "set_thread_area", "set_tid_address",
    "setuid", "setuid32", "sysinfo", "tgkill", "times", "tkill", "ugetrlimit", "uname", "wait4",
    "waitid", "waitpid",
    /* reading other processes of the container: safe since kernel 4.8 */
    "ptrace", "process_vm_readv", "process_vm_writev", NULL};

/* Signals. */
static const char *const sc_signals[] = {"alarm",
                                         "pause",
                                         "rt_sigaction",
                                         "rt_sigpending",
                                         "rt_sigprocmask",
                                         "rt_sigqueueinfo",
                                         "rt_sigreturn",
                                         "rt_sigsuspend",
                                         "rt_sigtimedwait",
                                         "rt_sigtimedwait_time64",
                                         "rt_tgsigqueueinfo",
                                         "sigaltstack",
                                         "sigprocmask",
                                         "sigreturn",
                                         NULL};

/* Memory and futexes. */
static const char *const sc_memory[] = {
    "brk",        "futex",     "futex_time64",  "futex_waitv",      "madvise",    "membarrier",
    "mincore",    "mlock",     "mlock2",        "mlockall",         "mmap",       "mmap2",
    "mprotect",   "mremap",    "msync",         "munlock",          "munlockall", "munmap",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages", NULL};

/* Clocks and timers (reading; setting the clock needs CAP_SYS_TIME). */
static const char *const sc_time[] = {"adjtimex",
                                      "clock_adjtime",
                                      "clock_adjtime64",
                                      "clock_getres",
                                      "clock_getres_time64",
                                      "clock_gettime",
                                      "clock_gettime64",
                                      "clock_nanosleep",
                                      "clock_nanosleep_time64",
                                      "getitimer",
                                      "gettimeofday",
                                      "nanosleep",
                                      "setitimer",
                                      "time",
                                      "timer_create",
                                      "timer_delete",
                                      "timer_getoverrun",
                                      "timer_gettime",
                                      "timer_gettime64",
                                      "timer_settime",
                                      "timer_settime64",
                                      NULL};

/* System V and POSIX IPC. */
static const char *const sc_ipc[] = {"ipc",
                                     "mq_getsetattr",
                                     "mq_notify",
                                     "mq_open",
                                     "mq_timedreceive",
                                     "mq_timedreceive_time64",
                                     "mq_timedsend",
                                     "mq_timedsend_time64",
                                     "mq_unlink",
                                     "msgctl",
                                     "msgget",
                                     "msgrcv",
                                     "msgsnd",
                                     "semctl",
                                     "semget",
                                     "semop",
                                     "semtimedop",
                                     "semtimedop_time64",
                                     "shmat",
                                     "shmctl",
                                     "shmdt",
                                     "shmget",
                                     NULL};

/* Sockets (socket() itself is conditional, below). */
static const char *const sc_net[] = {
    "accept",     "accept4",    "bind",       "connect",  "getpeername", "getsockname",
    "getsockopt", "listen",     "recv",       "recvfrom", "recvmmsg",    "recvmmsg_time64",
    "recvmsg",    "send",       "sendmmsg",   "sendmsg",  "sendto",      "setsockopt",
    "shutdown",   "socketcall", "socketpair", NULL};

/* socket(domain, ...) with any domain but AF_VSOCK (40). */
static const uint64_t af_vsock[] = {40};
/* personality(): only the harmless personas, and the query (0xffffffff). */
static const uint64_t personas[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};
/* clone() flags that make namespaces: NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|
 * NEWPID|NEWNET. Without CAP_SYS_ADMIN they must all be clear. */
static const uint64_t clone_ns_flags[] = {0x7E020000};

#define ALLOW(list, arch)                                         \
    {                                                             \
        list, arch, NO_CAP, NO_CAP, OCI_SC_NONE, 0, NULL, 0, 0, 0 \
    }
#define ALLOW_CAP(list, cap)                                       \
    {                                                              \
        list, ANY_ARCH, cap, NO_CAP, OCI_SC_NONE, 0, NULL, 0, 0, 0 \
    }

const oci_sc_group_t oci_sc_groups[] = {
    ALLOW(sc_files, ANY_ARCH),
    ALLOW(sc_events, ANY_ARCH),
    ALLOW(sc_process, ANY_ARCH),
    ALLOW(sc_signals, ANY_ARCH),
    ALLOW(sc_memory, ANY_ARCH),
    ALLOW(sc_time, ANY_ARCH),
    ALLOW(sc_ipc, ANY_ARCH),
    ALLOW(sc_net, ANY_ARCH),

    /* conditional on arguments */
    {NAMES("socket"), ANY_ARCH, NO_CAP, NO_CAP, OCI_SC_NE, 0, af_vsock, 1, 0, 0},
    {NAMES("personality"), ANY_ARCH, NO_CAP, NO_CAP, OCI_SC_EQ, 0, personas, 5, 0, 0},
    {NAMES("clone"), ~(uint32_t)(OCI_ARCH_S390X | OCI_ARCH_S390), NO_CAP, CAP_SYS_ADMIN,
     OCI_SC_MASKED_EQ, 0, clone_ns_flags, 1, 0, 0},
    /* s390 passes clone's flags second */
    {NAMES("clone"), OCI_ARCH_S390X | OCI_ARCH_S390, NO_CAP, CAP_SYS_ADMIN, OCI_SC_MASKED_EQ, 1,
     clone_ns_flags, 1, 0, 0},
    /* clone3 hides its flags in memory seccomp cannot read: say ENOSYS so
     * libc falls back to clone(), which is checked above */
    {NAMES("clone3"), ANY_ARCH, NO_CAP, CAP_SYS_ADMIN, OCI_SC_NONE, 0, NULL, 0, 0, 38},

    /* architecture specific */
    ALLOW(NAMES("arch_prctl"), OCI_ARCH_X86_64 | OCI_ARCH_X32),
    ALLOW(NAMES("modify_ldt"), OCI_ARCH_X86_64 | OCI_ARCH_X32 | OCI_ARCH_X86),
    ALLOW(NAMES("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                "cacheflush", "set_tls"),
          OCI_ARCH_ARM | OCI_ARCH_AARCH64),
    ALLOW(NAMES("sync_file_range2", "swapcontext"), OCI_ARCH_PPC64LE),
    ALLOW(NAMES("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
          OCI_ARCH_S390X | OCI_ARCH_S390),
    ALLOW(NAMES("riscv_flush_icache"), OCI_ARCH_RISCV64),

    /* follow the capabilities the container holds */
    ALLOW_CAP(NAMES("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
                    "fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
                    "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
                    "setns", "syslog", "umount", "umount2", "unshare"),
              CAP_SYS_ADMIN),
    ALLOW_CAP(NAMES("open_by_handle_at"), CAP_DAC_READ_SEARCH),
    ALLOW_CAP(NAMES("reboot"), CAP_SYS_BOOT),
    ALLOW_CAP(NAMES("chroot"), CAP_SYS_CHROOT),
    ALLOW_CAP(NAMES("delete_module", "init_module", "finit_module"), CAP_SYS_MODULE),
    ALLOW_CAP(NAMES("acct"), CAP_SYS_PACCT),
    ALLOW_CAP(NAMES("kcmp", "pidfd_getfd", "process_madvise"), CAP_SYS_PTRACE),
    ALLOW_CAP(NAMES("iopl", "ioperm"), CAP_SYS_RAWIO),
    ALLOW_CAP(NAMES("settimeofday", "stime", "clock_settime", "clock_settime64"), CAP_SYS_TIME),
    ALLOW_CAP(NAMES("vhangup"), CAP_SYS_TTY_CONFIG),
    ALLOW_CAP(NAMES("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
              CAP_SYS_NICE),
    ALLOW_CAP(NAMES("syslog"), CAP_SYSLOG),
    ALLOW_CAP(NAMES("bpf"), CAP_BPF),
    ALLOW_CAP(NAMES("perf_event_open"), CAP_PERFMON),
};

const size_t oci_sc_n_groups = sizeof(oci_sc_groups) / sizeof(oci_sc_groups[0]);
