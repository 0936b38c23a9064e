/* The confinement of the cricket-pull helper (see pull_helper.h). The
 * filter is a deny list (default allow): the helper runs libcurl, its TLS
 * and resolver stacks, libarchive and LMDB, whose exact syscalls vary with
 * glibc and library versions; what it refuses is what would let a
 * compromised parser leave its files: mounting, joining or making
 * namespaces, exec, tracing, loading code into the kernel. */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "common/error.h"
#include "server/image/pull_helper.h"

static const cap_value_t kept[] = {CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
                                   CAP_FOWNER,  CAP_FSETID,       CAP_MKNOD,
                                   CAP_SETFCAP, CAP_SYS_ADMIN};

static const char *const denied[] = {"mount",
                                     "umount2",
                                     "pivot_root",
                                     "chroot",
                                     "setns",
                                     "unshare",
                                     "fsopen",
                                     "fsmount",
                                     "fsconfig",
                                     "move_mount",
                                     "open_tree",
                                     "fspick",
                                     "mount_setattr",
                                     "execve",
                                     "execveat",
                                     "ptrace",
                                     "process_vm_readv",
                                     "process_vm_writev",
                                     "pidfd_getfd",
                                     "kcmp",
                                     "kexec_load",
                                     "kexec_file_load",
                                     "init_module",
                                     "finit_module",
                                     "delete_module",
                                     "bpf",
                                     "perf_event_open",
                                     "userfaultfd",
                                     "keyctl",
                                     "add_key",
                                     "request_key",
                                     "reboot",
                                     "swapon",
                                     "swapoff",
                                     "acct",
                                     "settimeofday",
                                     "clock_settime",
                                     "clock_adjtime",
                                     "adjtimex",
                                     "iopl",
                                     "ioperm",
                                     "open_by_handle_at",
                                     "name_to_handle_at",
                                     "personality",
                                     "quotactl",
                                     "sethostname",
                                     "setdomainname",
                                     "syslog",
                                     "vhangup",
                                     "uselib",
                                     "lookup_dcookie",
                                     "setuid",
                                     "setgid",
                                     "setreuid",
                                     "setregid",
                                     "setresuid",
                                     "setresgid",
                                     "setgroups",
                                     "setfsuid",
                                     "setfsgid",
                                     "capset"};

static bool is_kept(cap_value_t c)
{
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        if (kept[i] == c)
            return true;
    return false;
}

static int drop_caps(cri_error_t *err)
{
    for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
        if (!is_kept(c) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            return cri_error_make(err, errno, "drop capability %d from the bounding set", c);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return cri_error_make(err, errno, "clear ambient capabilities");
    cap_t caps = cap_get_proc();
    if (!caps)
        return cri_error_make(err, errno, "read capabilities");
    for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
        if (is_kept(c))
            continue;
        cap_flag_t sets[] = {CAP_EFFECTIVE, CAP_PERMITTED, CAP_INHERITABLE};
        for (size_t i = 0; i < 3; i++)
            cap_set_flag(caps, sets[i], 1, &c, CAP_CLEAR);
    }
    int rc = cap_set_proc(caps);
    int e = errno;
    cap_free(caps);
    if (rc < 0)
        return cri_error_make(err, e, "drop capabilities");
    return 0;
}

static int load_filter(cri_error_t *err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return cri_error_set(err, ENOMEM, "seccomp_init");
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    for (size_t i = 0; rc == 0 && i < sizeof(denied) / sizeof(denied[0]); i++) {
#ifdef __SANITIZE_ADDRESS__
        /* LeakSanitizer stops the world at exit through ptrace */
        if (strcmp(denied[i], "ptrace") == 0)
            continue;
#endif
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    /* new namespaces through clone(); clone3 takes its flags in memory, so it
     * is refused with ENOSYS and glibc falls back to clone() */
    const scmp_datum_t ns[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                               CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
    for (size_t i = 0; rc == 0 && i < sizeof(ns) / sizeof(ns[0]); i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns[i], ns[i]));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc < 0)
        return cri_error_make(err, -rc, "load the seccomp filter");
    return 0;
}

int pull_sandbox_enter(cri_error_t *err)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return cri_error_make(err, errno, "set no_new_privs");
    if (drop_caps(err) < 0 || load_filter(err) < 0)
        return cri_error_wrap(err, "confine the pull helper");
    return 0;
}
