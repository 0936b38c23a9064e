/* Shared checks of CRI request fields (see validate.h). */
#include "server/validate.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/error.h"

/* Values quoted in messages: at most this many bytes, unprintable as `?`. */
#define SHOW_MAX 64

static void show(const char *s, char out[SHOW_MAX + 4])
{
    size_t i = 0;
    for (; i < SHOW_MAX && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = s[i];
        if (c < 0x20 || c >= 0x7f)
            out[i] = '?';
    }
    if (s[i]) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* s is 1..max bytes of alnum plus `extra`, starting and ending alnum
 * (lower-case alnum only when lower). NULL when fine, else why not. */
static const char *name_problem(const char *s, size_t max, const char *extra, bool lower)
{
    size_t n = strlen(s);
    if (n == 0)
        return "is empty";
    if (n > max)
        return "is too long";
    for (size_t i = 0; i < n; i++) {
        bool ok = lower ? is_lower_alnum(s[i]) : is_alnum(s[i]);
        if (!ok && !strchr(extra, s[i]))
            return "has a character that is not allowed";
    }
    if (!(lower ? is_lower_alnum(s[0]) : is_alnum(s[0])) ||
        !(lower ? is_lower_alnum(s[n - 1]) : is_alnum(s[n - 1])))
        return "must start and end with a letter or digit";
    return NULL;
}

static int name_error(const char *field, const char *s, const char *why, const char *rule,
                      cri_error_t *err)
{
    char v[SHOW_MAX + 4];
    show(s, v);
    return cri_error_set(err, EINVAL, "%s `%s` %s (%s)", field, v, why, rule);
}

int validate_object_name(const char *field, const char *s, cri_error_t *err)
{
    const char *why = name_problem(s, VALIDATE_MAX_SUBDOMAIN, "-.", false);
    if (why)
        return name_error(field, s, why,
                          "1-253 letters, digits, `-` or `.`, starting and ending alphanumeric",
                          err);
    return 0;
}

int validate_dns_label(const char *field, const char *s, cri_error_t *err)
{
    const char *why = name_problem(s, VALIDATE_MAX_LABEL, "-", true);
    if (why)
        return name_error(field, s, why,
                          "a DNS-1123 label: 1-63 of a-z, 0-9 and `-`, starting and ending "
                          "alphanumeric",
                          err);
    return 0;
}

int validate_uid(const char *field, const char *s, cri_error_t *err)
{
    const char *why = name_problem(s, VALIDATE_MAX_UID, "-._", false);
    if (why)
        return name_error(field, s, why,
                          "1-253 letters, digits, `-`, `.` or `_`, starting and ending "
                          "alphanumeric",
                          err);
    return 0;
}

static const char *qualified_problem(const char *s)
{
    const char *slash = strchr(s, '/');
    const char *name = slash ? slash + 1 : s;
    if (slash) {
        size_t n = (size_t)(slash - s);
        if (n == 0)
            return "has an empty prefix";
        if (n > VALIDATE_MAX_SUBDOMAIN)
            return "has a prefix longer than 253";
        for (size_t i = 0; i < n; i++)
            if (!is_lower_alnum(s[i]) && s[i] != '-' && s[i] != '.')
                return "has a prefix that is not a DNS-1123 subdomain";
        if (!is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
            return "has a prefix that is not a DNS-1123 subdomain";
    }
    return name_problem(name, VALIDATE_MAX_LABEL, "-_.", false);
}

int validate_qualified_name(const char *field, const char *s, cri_error_t *err)
{
    const char *why = qualified_problem(s);
    if (why)
        return name_error(field, s, why,
                          "a qualified name: [DNS-1123 subdomain/]name, name 1-63 of "
                          "[A-Za-z0-9-_.] starting and ending alphanumeric",
                          err);
    return 0;
}

int validate_map(const char *field, void *const *entries, size_t n, bool check_keys,
                 cri_error_t *err)
{
    /* the size first, so a huge map is refused without touching every key */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        /* every map entry message has key then value after its base */
        const Runtime__V1__PodSandboxConfig__LabelsEntry *e = entries[i];
        total += strlen(e->key) + strlen(e->value);
        if (total > VALIDATE_MAX_MAP_BYTES)
            return cri_error_set(err, EINVAL,
                                 "%s: more than %zu bytes of keys and values (%zu entries)", field,
                                 VALIDATE_MAX_MAP_BYTES, n);
    }
    for (size_t i = 0; check_keys && i < n; i++) {
        const Runtime__V1__PodSandboxConfig__LabelsEntry *e = entries[i];
        if (validate_qualified_name(field, e->key, err) < 0)
            return -1;
    }
    return 0;
}

int validate_count(const char *field, size_t n, size_t max, cri_error_t *err)
{
    if (n > max)
        return cri_error_set(err, EINVAL, "%s: %zu entries, at most %zu", field, n, max);
    return 0;
}

int validate_strv(const char *field, char *const *v, size_t n, size_t max_n, size_t max_bytes,
                  cri_error_t *err)
{
    if (validate_count(field, n, max_n, err) < 0)
        return -1;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += strlen(v[i]) + 1;
        if (total > max_bytes)
            return cri_error_set(err, EINVAL, "%s: more than %zu bytes in total", field, max_bytes);
    }
    return 0;
}

/* Why path is not clean (after its leading `/`, if any), or NULL. */
static const char *path_problem(const char *s)
{
    if (strlen(s) > VALIDATE_MAX_PATH)
        return "is longer than 4096 bytes";
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return "has a control character";
    const char *c = s;
    while (*c) {
        size_t n = strcspn(c, "/");
        if (n == 0)
            return "has an empty component (`//` or a trailing `/`)";
        if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return "has a `.` or `..` component";
        c += n;
        if (*c == '/')
            c++;
        if (!*c && c[-1] == '/')
            return "has an empty component (`//` or a trailing `/`)";
    }
    return NULL;
}

int validate_abs_clean_path(const char *field, const char *s, cri_error_t *err)
{
    char v[SHOW_MAX + 4];
    show(s, v);
    if (s[0] != '/')
        return cri_error_set(err, EINVAL, "%s `%s` is not an absolute path", field, v);
    const char *why = strlen(s) > VALIDATE_MAX_PATH ? "is longer than 4096 bytes"
                      : strcmp(s, "/") == 0         ? NULL
                                                    : path_problem(s + 1);
    if (why)
        return cri_error_set(err, EINVAL, "%s `%s` %s", field, v, why);
    return 0;
}

int validate_rel_clean_path(const char *field, const char *s, cri_error_t *err)
{
    char v[SHOW_MAX + 4];
    show(s, v);
    if (!s[0])
        return cri_error_set(err, EINVAL, "%s is empty", field);
    if (s[0] == '/')
        return cri_error_set(err, EINVAL, "%s `%s` is absolute (must be relative)", field, v);
    const char *why = path_problem(s);
    if (why)
        return cri_error_set(err, EINVAL, "%s `%s` %s", field, v, why);
    return 0;
}

static int validate_idmap(const char *field, const char *kind, Runtime__V1__IDMapping *const *maps,
                          size_t n, cri_error_t *err)
{
    if (n != 1)
        return cri_error_set(err, EINVAL, "%s.%s: %zu ranges; exactly one is supported", field,
                             kind, n);
    const Runtime__V1__IDMapping *m = maps[0];
    if (m->container_id != 0)
        return cri_error_set(err, EINVAL,
                             "%s.%s[0].container_id: %u; the range must map container id 0", field,
                             kind, m->container_id);
    if (m->length == 0)
        return cri_error_set(err, EINVAL, "%s.%s[0].length: the range is empty", field, kind);
    if (m->host_id == 0)
        return cri_error_set(err, EINVAL,
                             "%s.%s[0].host_id: 0 would map the container's root to the host's",
                             field, kind);
    if ((uint64_t)m->host_id + m->length > UINT32_MAX)
        return cri_error_set(err, EINVAL, "%s.%s[0]: host ids %u + %u run past 2^32 - 1", field,
                             kind, m->host_id, m->length);
    return 0;
}

int validate_userns(const char *field, const Runtime__V1__UserNamespace *u, cri_error_t *err)
{
    if (!u)
        return 0;
    switch (u->mode) {
    case RUNTIME__V1__NAMESPACE_MODE__NODE:
        if (u->n_uids || u->n_gids)
            return cri_error_set(err, EINVAL, "%s: mode NODE takes no uids or gids", field);
        return 0;
    case RUNTIME__V1__NAMESPACE_MODE__POD:
        if (validate_idmap(field, "uids", u->uids, u->n_uids, err) < 0 ||
            validate_idmap(field, "gids", u->gids, u->n_gids, err) < 0)
            return -1;
        return 0;
    case RUNTIME__V1__NAMESPACE_MODE__CONTAINER:
    case RUNTIME__V1__NAMESPACE_MODE__TARGET:
        return cri_error_set(err, EINVAL, "%s.mode: %s is not supported (POD or NODE)", field,
                             u->mode == RUNTIME__V1__NAMESPACE_MODE__TARGET ? "TARGET"
                                                                            : "CONTAINER");
    default:
        return cri_error_set(err, EINVAL, "%s.mode: invalid value %d", field, (int)u->mode);
    }
}
