/* Shared checks of CRI request fields: names, label and annotation maps,
 * paths, and the size caps of every repeated field. Pure functions over
 * the unpacked request (no daemon, no I/O), so the handlers and the
 * test/fuzz/ entries call the same code. Every failure sets EINVAL and a
 * message that starts with the field's name, e.g.
 * "config.metadata.namespace `A_b`: ...".
 *
 * Names follow Kubernetes (k8s.io/apimachinery validation), relaxed only
 * where critest sends more: critest's pod and container names are mixed
 * case ("PodSandbox-with-attributes-<uuid>") and container names run past
 * 63 characters ("container-with-RunAsGroup-without-RunAsUser-test-<uuid>"),
 * so those two are checked as DNS-1123 subdomains without the lower-case
 * rule. Nothing that could split a CNI_ARGS list (`;`, `=`), a path (`/`)
 * or the `k8s_<name>_<ns>_<uid>_<attempt>` record name (`_`) gets through.
 *
 * The caps (generous for real pods, small enough that a refused request
 * is refused before anything is copied) are listed in
 * server/sandbox/README.md. */
#ifndef CRICKET_SERVER_VALIDATE_H
#define CRICKET_SERVER_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

/* Kubernetes: total bytes of keys and values of one label or annotation map. */
#define VALIDATE_MAX_MAP_BYTES ((size_t)256 * 1024)
/* Kubernetes: a DNS-1123 subdomain and a DNS-1123 label. */
#define VALIDATE_MAX_SUBDOMAIN 253
#define VALIDATE_MAX_LABEL 63
/* Pod uid: a UUID from the API server, any short token for static pods. */
#define VALIDATE_MAX_UID 253
/* Entries of one repeated field unless a field below says otherwise. */
#define VALIDATE_MAX_ENTRIES 1024
/* command + args, and envs: entries and total bytes (execve's ARG_MAX is
 * 2 MiB with the usual 8 MiB stack; more can never start). */
#define VALIDATE_MAX_ARGV 65536
#define VALIDATE_MAX_ARGV_BYTES ((size_t)2 * 1024 * 1024)
#define VALIDATE_MAX_ENVS 65536
#define VALIDATE_MAX_ENV_BYTES ((size_t)2 * 1024 * 1024)
/* Pod port mappings: kubelet sends every declared container port, and media
 * servers declare RTP ranges port by port. */
#define VALIDATE_MAX_PORTS 65536
/* NGROUPS_MAX */
#define VALIDATE_MAX_GROUPS 65536
/* resolv.conf: glibc reads 3 servers and 6 search domains; Kubernetes
 * allows 32 searches; a few more of each for other resolvers. */
#define VALIDATE_MAX_DNS 64
/* Bytes of one path or other free-form string field (PATH_MAX). */
#define VALIDATE_MAX_PATH 4096

/* Pod name (config.metadata.name) and container name: DNS-1123 subdomain
 * rules with upper case allowed: 1..253 of [A-Za-z0-9.-], starting and
 * ending alphanumeric. */
int validate_object_name(const char *field, const char *s, cri_error_t *err);
/* Namespace: a DNS-1123 label, 1..63 of [a-z0-9-], starting and ending
 * alphanumeric. */
int validate_dns_label(const char *field, const char *s, cri_error_t *err);
/* Pod uid: 1..253 of [A-Za-z0-9._-], starting and ending alphanumeric
 * (UUIDs, static pods' hashes, critest's "cri-test-uid<uuid>"). */
int validate_uid(const char *field, const char *s, cri_error_t *err);
/* A label or annotation key: a Kubernetes qualified name, [prefix/]name,
 * prefix a lower-case DNS-1123 subdomain, name 1..63 of [A-Za-z0-9-_.]
 * starting and ending alphanumeric. */
int validate_qualified_name(const char *field, const char *s, cri_error_t *err);

/* One map<string,string> field (labels, annotations): every entry message
 * has key then value after its base, as protobuf-c generates them. Checks
 * each key and the total of keys and values (VALIDATE_MAX_MAP_BYTES); with
 * check_keys false only the size (e.g. sysctls, cgroup unified). */
int validate_map(const char *field, void *const *entries, size_t n, bool check_keys,
                 cri_error_t *err);
/* n <= max, or EINVAL "field: n entries, at most max". */
int validate_count(const char *field, size_t n, size_t max, cri_error_t *err);
/* A string list: at most max_n entries and max_bytes in total (each string
 * counts with its NUL). */
int validate_strv(const char *field, char *const *v, size_t n, size_t max_n, size_t max_bytes,
                  cri_error_t *err);

/* An absolute, clean path: starts with `/`, no empty, `.` or `..`
 * component (so no `//` and no trailing `/` except the root itself), no
 * control character, at most VALIDATE_MAX_PATH bytes. */
int validate_abs_clean_path(const char *field, const char *s, cri_error_t *err);
/* A relative, clean path: not empty, no leading `/`, no empty, `.` or `..`
 * component, no control character, at most VALIDATE_MAX_PATH bytes. */
int validate_rel_clean_path(const char *field, const char *s, cri_error_t *err);

/* A CRI UserNamespace (NamespaceOption.userns_options; NULL = the host's).
 * NODE takes no mappings; POD takes exactly one uid and one gid range, each
 * starting at container id 0, not empty, not at host id 0 and not past
 * 2^32 - 1; CONTAINER and TARGET are refused (kubelet sends neither).
 * EINVAL naming the field under `field`. */
struct Runtime__V1__UserNamespace;
int validate_userns(const char *field, const struct Runtime__V1__UserNamespace *u,
                    cri_error_t *err);

#endif
