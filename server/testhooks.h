/* Test hooks: switches the e2e tests and benchmarks flip through the
 * environment. They exist only in test builds: `cricketd-test` links
 * testhooks.c, which reads CRICKET_TEST_HOOK_* once; the shipped `cricketd`
 * links testhooks_off.c, whose hooks do nothing and read nothing, so no
 * environment variable can change how the production daemon behaves. */
#ifndef CRICKET_SERVER_TESTHOOKS_H
#define CRICKET_SERVER_TESTHOOKS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when the test build was built with hooks (cricketd-test). */
bool testhooks_built(void);

/* CRICKET_TEST_HOOK_SLOW=Method:gatefile: true when calls to `method` are
 * held (they must then run on the worker pool, never inline). */
bool testhook_slow_method(const char *method);

/* Holds a call to a hooked method while the gate file exists: at most 2
 * min, or until *stopping turns true. Returns at once for other methods. */
void testhook_slow_wait(const char *method, const atomic_bool *stopping);

/* CRICKET_TEST_HOOK_STREAMING="fake[,ttl_ms=N]": *fake turns true for the
 * fake streaming backend, *ttl_ms gets the token lifetime when given. Both
 * are left alone otherwise. */
void testhook_streaming(bool *fake, int64_t *ttl_ms);

/* CRICKET_TEST_HOOK_POOL="threads:queued": the worker pool's limits, so a
 * test can fill the queue with few calls. Left alone when unset. */
void testhook_pool_limits(size_t *threads, size_t *queued);

/* Failpoints (crash safety, issue 11). CRICKET_FAILPOINT=name makes the
 * daemon SIGKILL itself the first time it reaches testhook_failpoint(name),
 * CRICKET_FAILPOINT=name:N the Nth time: the e2e tests then restart it and
 * check that the object is complete or absent and that nothing leaks.
 * Every name is in the table of testhooks.c (a name missing there aborts
 * the test build, so no point escapes the tests that walk the table). */
void testhook_failpoint(const char *name);

/* The cricket-pull helper (a child of the daemon) calls this with the
 * daemon's pid: a failpoint it reaches then SIGKILLs the daemon first and
 * itself next, so the pull.* failpoints end the daemon at the same moment
 * as when pulls ran inside it (test_failpoints.py expects the daemon to die). */
void testhook_failpoint_kill_also(int pid);

/* CRICKET_FAILPOINT=list: prints every failpoint name, one a line, and
 * exits 0 (test build; called first thing in main). */
void testhook_failpoint_list(void);

#endif
