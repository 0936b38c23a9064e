/* Value rules (used while loading and again by conf_validate()), durations,
 * ports, and the cross-key checks of conf_validate(). */
#include "conf-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define STR(s) ((s) ? (s) : "")

const char *conf_check_listen(const char *value)
{
    const char *path = str_has_prefix(value, "unix://") ? value + strlen("unix://") : value;
    if (path[0] != '/')
        return "must be unix:///absolute/path or an absolute path";
    if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
        return "socket path longer than 107 bytes";
    return NULL;
}

char *conf_listen_normalize(const char *value)
{
    if (value[0] == '/')
        return xasprintf("unix://%s", value);
    return xstrdup(value);
}

const char *conf_check_abs_path(const char *value)
{
    return value[0] == '/' ? NULL : "must be an absolute path";
}

const char *conf_check_abs_path_or_empty(const char *value)
{
    return value[0] == '\0' || value[0] == '/' ? NULL : "must be empty or an absolute path";
}

const char *conf_check_log_level(const char *value)
{
    return log_level_parse(value) >= 0 ? NULL : "must be one of error, warn, info, debug, trace";
}

const char *conf_check_cgroup_manager(const char *value)
{
    return strcmp(value, "cgroupfs") == 0 || strcmp(value, "systemd") == 0
               ? NULL
               : "must be cgroupfs or systemd";
}

const char *conf_check_nonempty(const char *value)
{
    return value[0] ? NULL : "must not be empty";
}

const char *conf_check_registry(const char *value)
{
    if (!value[0])
        return "must not be empty";
    if (strstr(value, "://"))
        return "must be host[:port][/path], without a scheme";
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return "must not contain spaces or control characters";
    return NULL;
}

const char *conf_check_ip(const char *value)
{
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, value, addr) == 1 || inet_pton(AF_INET6, value, addr) == 1)
        return NULL;
    return "must be an IPv4 or IPv6 address";
}

/* RuntimeClass handlers are DNS labels (RFC 1123). */
const char *conf_check_handler_name(const char *value)
{
    static const char *const why =
        "must be a DNS label (a-z, 0-9 and '-', at most 63, starting and ending alphanumeric)";
    size_t len = strlen(value);
    if (len == 0 || len > 63 || value[0] == '-' || value[len - 1] == '-')
        return why;
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return why;
    }
    return NULL;
}

const char *conf_port_parse(const char *text, int *ret_port)
{
    static const char *const why = "must be an integer from 0 to 65535";
    size_t len = strlen(text);
    int port = 0;
    if (len == 0 || len > 5)
        return why;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return why;
        port = port * 10 + (text[i] - '0');
    }
    if (port > 65535)
        return why;
    *ret_port = port;
    return NULL;
}

const char *conf_check_count_limit(const char *value)
{
    uint64_t n = 0;
    if (conf_count_parse(value, &n) || n < 1 || n > CONF_COUNT_MAX)
        return "must be a whole number from 1 to 1000000";
    return NULL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

const char *conf_count_parse(const char *text, uint64_t *ret)
{
    static const char *const suffixes[] = {"", "Ki", "Mi", "Gi", "Ti"};
    uint64_t n = 0;
    size_t i = 0;
    for (; is_digit(text[i]); i++) {
        uint64_t d = (uint64_t)(text[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return "too large";
        n = n * 10 + d;
    }
    if (i == 0)
        return "must be a whole number such as 1000 or 64Gi";
    for (size_t k = 0; k < sizeof(suffixes) / sizeof(suffixes[0]); k++) {
        if (strcmp(text + i, suffixes[k]) != 0)
            continue;
        if (n > (UINT64_MAX >> (10 * k)))
            return "too large";
        *ret = n << (10 * k);
        return NULL;
    }
    return "unknown suffix (use Ki, Mi, Gi or Ti)";
}

typedef unsigned __int128 u128;

/* Go's time.ParseDuration grammar: [+]{digits[.digits]unit}+ or "0". */
const char *conf_duration_parse(const char *text, uint64_t *ret_ms)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1ULL},
        {"us", 1000ULL},
        {"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000ULL}, /* U+03BC Greek mu */
        {"ms", 1000000ULL},
        {"s", 1000000000ULL},
        {"m", 60ULL * 1000000000ULL},
        {"h", 3600ULL * 1000000000ULL},
    };
    static const char *const syntax = "must be a duration such as 500ms, 30s, 1m30s or 2h";
    const char *s = text;
    u128 total = 0;

    if (strcmp(s, "0") == 0) {
        *ret_ms = 0;
        return NULL;
    }
    if (*s == '-')
        return "must not be negative";
    if (*s == '+')
        s++;
    if (*s == '\0')
        return syntax;
    while (*s) {
        uint64_t whole = 0, frac = 0, scale = 1;
        bool digits = false;
        for (; is_digit(*s); s++, digits = true) {
            if (whole > (UINT64_MAX - 9) / 10)
                return "too large";
            whole = whole * 10 + (uint64_t)(*s - '0');
        }
        if (*s == '.') {
            /* Digits past 10^-18 of a unit are below a nanosecond: dropped. */
            for (s++; is_digit(*s); s++, digits = true) {
                if (scale < 1000000000000000000ULL) {
                    frac = frac * 10 + (uint64_t)(*s - '0');
                    scale *= 10;
                }
            }
        }
        if (!digits)
            return syntax;
        const char *u = s;
        while (*s && !is_digit(*s) && *s != '.')
            s++;
        size_t ulen = (size_t)(s - u);
        if (ulen == 0)
            return "missing unit (use ms, s, m or h)";
        uint64_t unit = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strlen(units[i].name) == ulen && memcmp(units[i].name, u, ulen) == 0)
                unit = units[i].ns;
        if (!unit)
            return "unknown unit (use ms, s, m or h)";
        total += (u128)whole * unit + (u128)frac * unit / scale;
        if (total > UINT64_MAX)
            return "too large";
    }
    if (total % 1000000 != 0)
        return "must be a whole number of milliseconds";
    *ret_ms = (uint64_t)(total / 1000000);
    return NULL;
}

void conf_duration_format(uint64_t ms, char *buf, size_t size)
{
    char out[64] = "";
    size_t off = 0;
    uint64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, rest = ms % 1000;

    if (ms == 0) {
        (void)snprintf(buf, size, "0s");
        return;
    }
    if (ms < 1000) {
        (void)snprintf(buf, size, "%" PRIu64 "ms", ms);
        return;
    }
    if (h)
        off += (size_t)snprintf(out + off, sizeof(out) - off, "%" PRIu64 "h", h);
    if (m)
        off += (size_t)snprintf(out + off, sizeof(out) - off, "%" PRIu64 "m", m);
    if (rest) {
        char frac[8];
        (void)snprintf(frac, sizeof(frac), "%03" PRIu64, rest);
        for (size_t n = strlen(frac); n > 0 && frac[n - 1] == '0'; n--)
            frac[n - 1] = '\0';
        (void)snprintf(out + off, sizeof(out) - off, "%" PRIu64 ".%ss", s, frac);
    } else if (s) {
        (void)snprintf(out + off, sizeof(out) - off, "%" PRIu64 "s", s);
    }
    (void)snprintf(buf, size, "%s", out);
}

const char *conf_quote(const char *s, char *buf, size_t size)
{
    size_t limit = size > 84 ? 80 : size - 4;
    size_t len = strlen(s), n = len < limit ? len : limit;
    if (n < len)
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (char)(c < 0x20 || c == 0x7f ? '?' : c);
    }
    if (n < len) {
        memcpy(buf + n, "...", 4);
    } else {
        buf[n] = '\0';
    }
    return buf;
}

/* A rule broken by the value of key: point at where the value came from. */
static int invalid(const conf_t *conf, const char *key, const char *value, const char *why,
                   cri_error_t *err)
{
    const conf_origin_t *o = conf_origin_find(conf, key);
    char kq[CONF_QUOTE_MAX], vq[CONF_QUOTE_MAX];
    conf_quote(key, kq, sizeof(kq));
    conf_quote(value, vq, sizeof(vq));
    if (o)
        return cri_error_set(err, EINVAL, "%s:%d: key \"%s\": invalid value \"%s\": %s", o->file,
                             o->line, kq, vq, why);
    return cri_error_set(err, EINVAL, "key \"%s\": invalid value \"%s\": %s", kq, vq, why);
}

static int validate_strv(const conf_t *conf, const char *key, char *const *v, conf_check_fn check,
                         cri_error_t *err)
{
    for (size_t i = 0; v && v[i]; i++) {
        const char *why = check ? check(v[i]) : NULL;
        if (why) {
            cleanup_free char *ikey = xasprintf("%s[%zu]", key, i);
            return invalid(conf, ikey, v[i], why, err);
        }
    }
    return 0;
}

/* Checks `value` of field `field` of entry `name` of map `map`. */
static int validate_field(const conf_t *conf, const char *map, const char *name, const char *field,
                          const char *value, conf_check_fn check, cri_error_t *err)
{
    const char *why = check(value);
    if (!why)
        return 0;
    cleanup_free char *key = xasprintf("%s.%s.%s", map, name, field);
    return invalid(conf, key, value, why, err);
}

static int validate_handlers(const conf_t *conf, cri_error_t *err)
{
    static const char *const map = "runtime.handlers";
    for (size_t i = 0; i < conf->runtime.n_handlers; i++) {
        const conf_handler_t *h = &conf->runtime.handlers[i];
        const char *why = conf_check_handler_name(STR(h->name));
        if (why)
            return invalid(conf, map, STR(h->name), why, err);
        if (validate_field(conf, map, h->name, "path", STR(h->path), conf_check_nonempty, err) <
                0 ||
            validate_field(conf, map, h->name, "root", STR(h->root), conf_check_abs_path_or_empty,
                           err) < 0)
            return -1;
    }
    if (!conf_find_handler(conf, STR(conf->runtime.default_handler)))
        return invalid(conf, "runtime.default_handler", STR(conf->runtime.default_handler),
                       "no such entry in runtime.handlers", err);
    return 0;
}

static int validate_registries(const conf_t *conf, cri_error_t *err)
{
    static const char *const map = "image.registries";
    for (size_t i = 0; i < conf->image.n_registries; i++) {
        const conf_registry_t *r = &conf->image.registries[i];
        const char *why = conf_check_registry(STR(r->host));
        if (why)
            return invalid(conf, map, STR(r->host), why, err);
        if (validate_field(conf, map, r->host, "location", STR(r->location), conf_check_registry,
                           err) < 0)
            return -1;
        cleanup_free char *key = xasprintf("%s.%s.mirrors", map, r->host);
        if (validate_strv(conf, key, r->mirrors, conf_check_registry, err) < 0)
            return -1;
    }
    return 0;
}

/* streaming.tls_cert and tls_key go together; a client CA needs both. The
 * message names the key that is set and points at where it was set. */
static int validate_tls(const conf_t *conf, cri_error_t *err)
{
    const char *cert = STR(conf->streaming.tls_cert), *key = STR(conf->streaming.tls_key);
    const char *ca = STR(conf->streaming.tls_client_ca);
    if (*cert && !*key)
        return invalid(conf, "streaming.tls_cert", cert, "streaming.tls_key must be set too", err);
    if (*key && !*cert)
        return invalid(conf, "streaming.tls_key", key, "streaming.tls_cert must be set too", err);
    if (*ca && !*cert)
        return invalid(conf, "streaming.tls_client_ca", ca,
                       "needs streaming.tls_cert and streaming.tls_key", err);
    return 0;
}

int conf_validate(const conf_t *conf, cri_error_t *err)
{
    for (size_t i = 0; i < conf_n_keys; i++) {
        const conf_key_t *k = &conf_keys[i];
        const char *why = NULL;
        char num[32];
        switch (k->kind) {
        case CONF_KEY_STRING: {
            const char *v = STR(*CONF_CFIELD(conf, k, char *));
            why = k->check ? k->check(v) : NULL;
            if (why)
                return invalid(conf, k->key, v, why, err);
            break;
        }
        case CONF_KEY_PORT: {
            int port = *CONF_CFIELD(conf, k, int);
            (void)snprintf(num, sizeof(num), "%d", port);
            if (port < 0 || port > 65535)
                return invalid(conf, k->key, num, "must be an integer from 0 to 65535", err);
            break;
        }
        case CONF_KEY_COUNT: {
            (void)snprintf(num, sizeof(num), "%" PRIu64, *CONF_CFIELD(conf, k, uint64_t));
            why = k->check ? k->check(num) : NULL;
            if (why)
                return invalid(conf, k->key, num, why, err);
            break;
        }
        case CONF_KEY_STRV:
            if (validate_strv(conf, k->key, *CONF_CFIELD(conf, k, char **), k->check, err) < 0)
                return -1;
            break;
        case CONF_KEY_HANDLERS:
            if (validate_handlers(conf, err) < 0)
                return -1;
            break;
        case CONF_KEY_REGISTRIES:
            if (validate_registries(conf, err) < 0)
                return -1;
            break;
        case CONF_KEY_SECTION:
        case CONF_KEY_DURATION:
        case CONF_KEY_BOOL:
            break;
        }
    }
    return validate_tls(conf, err);
}
