/* Helper processes a previous daemon left running when it died: a CNI
 * plugin half way through ADD or DEL, a runc call (the daemon's own, or a
 * monitor's `runc create`). They keep running after the daemon is killed,
 * and one that finishes after startup recovery tore its pod down would
 * undo that teardown (an ADD that writes its host-local lease after the
 * DEL leaks the lease; a `runc create` that ends after `runc delete`
 * leaves a container). So recovery waits for them first. */
#ifndef CRICKET_SERVER_ORPHANS_H
#define CRICKET_SERVER_ORPHANS_H

#include <stddef.h>

struct daemon;

/* The "K=V" entry cricketd adds to every CNI plugin's environment, naming
 * the daemon's root; malloc'd, caller frees. */
char *orphans_cni_marker(const char *root);

/* Finds the processes of this daemon's root (CNI plugins carrying the
 * marker, `<runtime> --root <handler root> ...` calls) that are not this
 * process, and waits for them to exit, at most the longest per-call
 * timeout (CNI, runtimes); the ones still running then are killed
 * (SIGKILL); then removes the runtime call files dead daemons left
 * (oci_runtime_sweep_tmp). Returns how many helpers were found. */
size_t orphans_wait(struct daemon *d);

#endif
