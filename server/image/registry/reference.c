/* Image references, normalised the Docker way.
 *
 * Grammar (distribution/reference): [domain/]path[:tag][@digest], where the
 * first component is a domain when it holds a '.' or a ':' or is
 * "localhost"; path components are lower-case alphanumerics joined by '.',
 * '_', "__" or runs of '-'; a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
#include "server/image/registry/registry.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

#define REF_NAME_MAX 255
#define REF_TAG_MAX 128
#define DOCKER_DOMAIN "docker.io"

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_hex_string(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool image_digest_valid(const char *s)
{
    return s && str_has_prefix(s, "sha256:") && strlen(s) == 7 + 64 && is_hex_string(s + 7, 64);
}

/* One path component: alnum (sep alnum)* with sep = '.', '_', "__", '-'+. */
static bool component_valid(const char *s, size_t n)
{
    if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (is_lower_alnum(s[i]))
            continue;
        size_t j = i;
        while (j < n && !is_lower_alnum(s[j]))
            j++;
        size_t len = j - i;
        bool ok = (len == 1 && (s[i] == '.' || s[i] == '_')) ||
                  (len == 2 && s[i] == '_' && s[i + 1] == '_') || strspn(s + i, "-") >= len;
        if (!ok)
            return false;
        i = j - 1;
    }
    return true;
}

static bool path_valid(const char *p)
{
    if (!*p)
        return false; /* "host.name/" (found by fuzz_image_ref) */
    while (*p) {
        size_t n = strcspn(p, "/");
        if (!component_valid(p, n))
            return false;
        p += n;
        if (*p == '/' && *++p == '\0')
            return false;
    }
    return true;
}

/* host components [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])? joined by '.', then
 * an optional :port of digits; or a bracketed IPv6 literal with a port. */
static bool domain_valid(const char *d)
{
    const char *colon = NULL;
    if (d[0] == '[') {
        const char *end = strchr(d, ']');
        if (!end || end == d + 1 ||
            strspn(d + 1, "0123456789abcdefABCDEF:") != (size_t)(end - d - 1))
            return false;
        colon = end[1] == ':' ? end + 1 : NULL;
        if (!colon && end[1])
            return false;
    } else {
        size_t host_len = strcspn(d, ":");
        colon = d[host_len] ? d + host_len : NULL;
        for (size_t i = 0; i < host_len;) {
            size_t n = strcspn(d + i, ".:");
            if (n > host_len - i)
                n = host_len - i;
            if (n == 0 || !isalnum((unsigned char)d[i]) || !isalnum((unsigned char)d[i + n - 1]))
                return false;
            for (size_t k = i; k < i + n; k++)
                if (!isalnum((unsigned char)d[k]) && d[k] != '-')
                    return false;
            i += n + 1;
            if (i == host_len + 1 && d[host_len - 1] == '.')
                return false;
        }
        if (host_len == 0)
            return false;
    }
    if (colon) {
        size_t n = strlen(colon + 1);
        if (n == 0 || n > 5 || strspn(colon + 1, "0123456789") != n)
            return false;
    }
    return true;
}

static bool tag_valid(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > REF_TAG_MAX)
        return false;
    if (!isalnum((unsigned char)t[0]) && t[0] != '_')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
            return false;
    return true;
}

void image_ref_free(image_ref_t *r)
{
    if (!r)
        return;
    free(r->domain);
    free(r->path);
    free(r->tag);
    free(r->digest);
    free(r);
}

/* Splits name into domain and path the Docker way and normalises both. */
static void split_domain(const char *name, image_ref_t *r)
{
    const char *slash = strchr(name, '/');
    if (slash) {
        size_t n = (size_t)(slash - name);
        bool is_domain = memchr(name, '.', n) || memchr(name, ':', n) ||
                         (n == strlen("localhost") && strncmp(name, "localhost", n) == 0);
        if (is_domain) {
            r->domain = xstrndup(name, n);
            r->path = xstrdup(slash + 1);
        }
    }
    if (!r->domain) {
        r->domain = xstrdup(DOCKER_DOMAIN);
        r->path = xstrdup(name);
    }
    if (strcmp(r->domain, "index.docker.io") == 0) {
        str_set(&r->domain, DOCKER_DOMAIN);
    }
    if (strcmp(r->domain, DOCKER_DOMAIN) == 0 && !strchr(r->path, '/')) {
        char *p = xasprintf("library/%s", r->path);
        free(r->path);
        r->path = p;
    }
}

static int ref_invalid(const char *s, const char *why, cri_error_t *err)
{
    return cri_error_set(err, EINVAL, "invalid image reference `%s`: %s", s, why);
}

int image_ref_parse(const char *s, image_ref_t **ret, cri_error_t *err)
{
    if (!s || !*s)
        return cri_error_set(err, EINVAL, "invalid image reference ``: empty");
    if (strlen(s) == 64 && is_hex_string(s, 64))
        return ref_invalid(s, "a 64-hex string is an image id, not a reference", err);
    cleanup_free char *copy = xstrdup(s);
    image_ref_t *r = xcalloc(1, sizeof(*r));
    cleanup_image_ref image_ref_t *owner = r;

    char *at = strchr(copy, '@');
    if (at) {
        *at = '\0';
        if (!image_digest_valid(at + 1))
            return ref_invalid(s, "digest must be sha256:<64 lower-case hex>", err);
        r->digest = xstrdup(at + 1);
    }
    char *last_slash = strrchr(copy, '/');
    char *colon = strrchr(copy, ':');
    if (colon && (!last_slash || colon > last_slash)) {
        *colon = '\0';
        if (!tag_valid(colon + 1))
            return ref_invalid(s, "bad tag", err);
        r->tag = xstrdup(colon + 1);
    }
    if (!copy[0])
        return ref_invalid(s, "empty name", err);
    split_domain(copy, r);
    if (!domain_valid(r->domain))
        return ref_invalid(s, "bad registry host", err);
    for (const char *p = r->path; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            return ref_invalid(s, "repository name must be lowercase", err);
    if (!path_valid(r->path))
        return ref_invalid(s, "bad repository name", err);
    if (strlen(r->domain) + 1 + strlen(r->path) > REF_NAME_MAX)
        return ref_invalid(s, "name longer than 255 characters", err);
    if (!r->tag && !r->digest)
        r->tag = xstrdup("latest");
    owner = NULL;
    *ret = r;
    return 0;
}

char *image_ref_name(const image_ref_t *r)
{
    return xasprintf("%s/%s", r->domain, r->path);
}

char *image_ref_string(const image_ref_t *r)
{
    return xasprintf("%s/%s%s%s%s%s", r->domain, r->path, r->tag ? ":" : "", r->tag ? r->tag : "",
                     r->digest ? "@" : "", r->digest ? r->digest : "");
}
