/* SPDY/3.1 frame codec and header blocks (draft-mbelshe-httpbis-spdy-00,
 * SPDY/3.1 adds only session flow control, which spdystream, the Go side
 * of kubelet and kubectl, neither sends nor honours).
 *
 * Control frame: C=1 | version(15)=3 | type(16) | flags(8) | length(24) | data.
 * Data frame:    C=0 | stream-id(31) | flags(8) | length(24) | data.
 * Header blocks are zlib streams, one per direction per connection, primed
 * with the SPDY/3 dictionary and flushed with Z_SYNC_FLUSH per block. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/streaming/proto/proto.h"

#define SPDY_VERSION 3
#define MAX_HEADER_BLOCK (1u << 20) /* inflated */

/* The dictionary of SPDY/3 section 2.6.10.1: these names, each with a
 * 32-bit big-endian length before it, then the common values as one run. */
static const char *const dict_names[] = {"options",
                                         "head",
                                         "post",
                                         "put",
                                         "delete",
                                         "trace",
                                         "accept",
                                         "accept-charset",
                                         "accept-encoding",
                                         "accept-language",
                                         "accept-ranges",
                                         "age",
                                         "allow",
                                         "authorization",
                                         "cache-control",
                                         "connection",
                                         "content-base",
                                         "content-encoding",
                                         "content-language",
                                         "content-length",
                                         "content-location",
                                         "content-md5",
                                         "content-range",
                                         "content-type",
                                         "date",
                                         "etag",
                                         "expect",
                                         "expires",
                                         "from",
                                         "host",
                                         "if-match",
                                         "if-modified-since",
                                         "if-none-match",
                                         "if-range",
                                         "if-unmodified-since",
                                         "last-modified",
                                         "location",
                                         "max-forwards",
                                         "pragma",
                                         "proxy-authenticate",
                                         "proxy-authorization",
                                         "range",
                                         "referer",
                                         "retry-after",
                                         "server",
                                         "te",
                                         "trailer",
                                         "transfer-encoding",
                                         "upgrade",
                                         "user-agent",
                                         "vary",
                                         "via",
                                         "warning",
                                         "www-authenticate",
                                         "method",
                                         "get",
                                         "status",
                                         "200 OK",
                                         "version",
                                         "HTTP/1.1",
                                         "url",
                                         "public",
                                         "set-cookie",
                                         "keep-alive",
                                         "origin"};

static const char dict_tail[] =
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
    "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/"
    "xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,"
    "sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

static uint8_t dict[1536];
static size_t dict_len;
static pthread_once_t dict_once = PTHREAD_ONCE_INIT;

static void build_dictionary(void)
{
    size_t o = 0;
    for (size_t i = 0; i < sizeof(dict_names) / sizeof(dict_names[0]); i++) {
        size_t n = strlen(dict_names[i]);
        dict[o++] = 0;
        dict[o++] = 0;
        dict[o++] = (uint8_t)(n >> 8);
        dict[o++] = (uint8_t)n;
        memcpy(dict + o, dict_names[i], n);
        o += n;
    }
    memcpy(dict + o, dict_tail, sizeof(dict_tail) - 1);
    dict_len = o + sizeof(dict_tail) - 1;
}

const uint8_t *spdy_dictionary(size_t *ret_len)
{
    pthread_once(&dict_once, build_dictionary);
    *ret_len = dict_len;
    return dict;
}

void spdy_headers_free(spdy_headers_t *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        free(h->v[i].value);
    }
    free(h->v);
    h->v = NULL;
    h->n = 0;
}

const char *spdy_headers_get(const spdy_headers_t *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->v[i].name, name) == 0)
            return h->v[i].value;
    }
    return NULL;
}

int spdy_zctx_init(spdy_zctx_t *z, cri_error_t *err)
{
    memset(z, 0, sizeof(*z));
    if (inflateInit(&z->in) != Z_OK)
        return cri_error_set(err, ENOMEM, "inflateInit");
    z->in_ok = true;
    if (deflateInit(&z->out, Z_DEFAULT_COMPRESSION) != Z_OK)
        return cri_error_set(err, ENOMEM, "deflateInit");
    z->out_ok = true;
    size_t n;
    const uint8_t *d = spdy_dictionary(&n);
    if (deflateSetDictionary(&z->out, d, (uInt)n) != Z_OK)
        return cri_error_set(err, EIO, "deflateSetDictionary");
    return 0;
}

void spdy_zctx_free(spdy_zctx_t *z)
{
    if (z->in_ok)
        inflateEnd(&z->in);
    if (z->out_ok)
        deflateEnd(&z->out);
    z->in_ok = z->out_ok = false;
}

int spdy_headers_encode(spdy_zctx_t *z, const spdy_header_t *h, size_t n, sbuf_t *out,
                        cri_error_t *err)
{
    sbuf_t raw = {0};
    sbuf_put32(&raw, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        sbuf_put32(&raw, (uint32_t)strlen(h[i].name));
        sbuf_append(&raw, h[i].name, strlen(h[i].name));
        sbuf_put32(&raw, (uint32_t)strlen(h[i].value));
        sbuf_append(&raw, h[i].value, strlen(h[i].value));
    }
    z->out.next_in = raw.data;
    z->out.avail_in = (uInt)raw.len;
    do {
        uint8_t chunk[4096];
        z->out.next_out = chunk;
        z->out.avail_out = sizeof(chunk);
        int rc = deflate(&z->out, Z_SYNC_FLUSH);
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            sbuf_free(&raw);
            return cri_error_set(err, EIO, "deflate header block: %d", rc);
        }
        sbuf_append(out, chunk, sizeof(chunk) - z->out.avail_out);
    } while (z->out.avail_out == 0);
    sbuf_free(&raw);
    return 0;
}

static int inflate_block(spdy_zctx_t *z, const uint8_t *p, size_t n, sbuf_t *raw, cri_error_t *err)
{
    z->in.next_in = (uint8_t *)p;
    z->in.avail_in = (uInt)n;
    for (;;) {
        uint8_t chunk[4096];
        z->in.next_out = chunk;
        z->in.avail_out = sizeof(chunk);
        int rc = inflate(&z->in, Z_SYNC_FLUSH);
        if (rc == Z_NEED_DICT) {
            size_t dn;
            const uint8_t *d = spdy_dictionary(&dn);
            if (inflateSetDictionary(&z->in, d, (uInt)dn) != Z_OK)
                return cri_error_set(err, EPROTO, "header block: wrong dictionary");
            continue;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return cri_error_set(err, EPROTO, "inflate header block: %d", rc);
        size_t got = sizeof(chunk) - z->in.avail_out;
        sbuf_append(raw, chunk, got);
        if (raw->len > MAX_HEADER_BLOCK)
            return cri_error_set(err, EPROTO, "header block larger than %u", MAX_HEADER_BLOCK);
        if (z->in.avail_out != 0 && (z->in.avail_in == 0 || rc == Z_BUF_ERROR))
            break; /* all input used and all output out, or stuck */
    }
    return 0;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads one length-prefixed string at *pos. */
static char *take_string(const sbuf_t *raw, size_t *pos)
{
    if (raw->len - *pos < 4)
        return NULL;
    uint32_t len = get32(raw->data + *pos);
    *pos += 4;
    if (len > raw->len - *pos)
        return NULL;
    char *s = xstrndup((const char *)raw->data + *pos, len);
    *pos += len;
    return s;
}

int spdy_headers_decode(spdy_zctx_t *z, const uint8_t *p, size_t n, spdy_headers_t *ret,
                        cri_error_t *err)
{
    sbuf_t raw = {0};
    if (inflate_block(z, p, n, &raw, err) < 0) {
        sbuf_free(&raw);
        return -1;
    }
    spdy_headers_t h = {0};
    size_t pos = 4;
    uint32_t count = raw.len >= 4 ? get32(raw.data) : 0;
    if (raw.len < 4 || count > raw.len / 8)
        goto bad;
    h.v = xcalloc(count ? count : 1, sizeof(*h.v));
    for (uint32_t i = 0; i < count; i++) {
        char *name = take_string(&raw, &pos);
        char *value = name ? take_string(&raw, &pos) : NULL;
        if (!value) {
            free(name);
            goto bad;
        }
        for (char *c = name; *c; c++) /* names are lower case on the wire */
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        h.v[h.n].name = name;
        h.v[h.n].value = value;
        h.n++;
    }
    sbuf_free(&raw);
    *ret = h;
    return 0;
bad:
    sbuf_free(&raw);
    spdy_headers_free(&h);
    return cri_error_set(err, EPROTO, "malformed header block");
}

static long parse_control(const uint8_t *p, size_t len, spdy_frame_t *f, cri_error_t *err)
{
    const uint8_t *d = p + 8;
    switch (f->type) {
    case SPDY_SYN_STREAM:
        if (len < 10)
            return cri_error_set(err, EPROTO, "short SYN_STREAM");
        f->stream_id = get32(d) & 0x7fffffff;
        f->value = get32(d + 4) & 0x7fffffff; /* associated stream */
        f->payload = d + 10;
        f->payload_len = len - 10;
        break;
    case SPDY_SYN_REPLY:
    case SPDY_HEADERS:
        if (len < 4)
            return cri_error_set(err, EPROTO, "short SYN_REPLY/HEADERS");
        f->stream_id = get32(d) & 0x7fffffff;
        f->payload = d + 4;
        f->payload_len = len - 4;
        break;
    case SPDY_RST_STREAM:
    case SPDY_WINDOW_UPDATE:
        if (len != 8)
            return cri_error_set(err, EPROTO, "bad RST_STREAM/WINDOW_UPDATE length %zu", len);
        f->stream_id = get32(d) & 0x7fffffff;
        f->value = get32(d + 4) & (f->type == SPDY_WINDOW_UPDATE ? 0x7fffffff : 0xffffffff);
        break;
    case SPDY_PING:
        if (len != 4)
            return cri_error_set(err, EPROTO, "bad PING length %zu", len);
        f->value = get32(d);
        break;
    case SPDY_GOAWAY:
        if (len != 8)
            return cri_error_set(err, EPROTO, "bad GOAWAY length %zu", len);
        f->stream_id = get32(d) & 0x7fffffff;
        f->value = get32(d + 4);
        break;
    default: /* SETTINGS and unknown types: payload passed through, ignored */
        f->payload = d;
        f->payload_len = len;
        break;
    }
    return 0;
}

long spdy_frame_parse(const uint8_t *p, size_t n, spdy_frame_t *ret, cri_error_t *err)
{
    if (n < 8)
        return 0;
    uint32_t len = (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
    if (len > SPDY_MAX_FRAME)
        return cri_error_set(err, EPROTO, "frame of %u bytes", len);
    if (n < 8 + (size_t)len)
        return 0;
    spdy_frame_t f = {0};
    f.control = (p[0] & 0x80) != 0;
    f.flags = p[4];
    if (f.control) {
        uint16_t version = (uint16_t)((p[0] & 0x7f) << 8 | p[1]);
        if (version != SPDY_VERSION)
            return cri_error_set(err, EPROTO, "SPDY version %u", version);
        f.type = (uint16_t)(p[2] << 8 | p[3]);
        if (parse_control(p, len, &f, err) < 0)
            return -1;
    } else {
        f.stream_id = get32(p) & 0x7fffffff;
        f.payload = p + 8;
        f.payload_len = len;
    }
    *ret = f;
    return 8 + (long)len;
}

static void put_control_head(sbuf_t *out, uint16_t type, uint8_t flags, uint32_t len)
{
    uint8_t h[8] = {0x80, SPDY_VERSION, type >> 8, type & 0xff, flags, len >> 16, len >> 8, len};
    sbuf_append(out, h, sizeof(h));
}

void spdy_write_data(sbuf_t *out, uint32_t stream_id, uint8_t flags, const void *p, size_t n)
{
    sbuf_put32(out, stream_id & 0x7fffffff);
    uint8_t h[4] = {flags, n >> 16, n >> 8, n};
    sbuf_append(out, h, sizeof(h));
    sbuf_append(out, p, n);
}

int spdy_write_syn(sbuf_t *out, spdy_zctx_t *z, uint16_t type, uint32_t stream_id, uint8_t flags,
                   const spdy_header_t *h, size_t n, cri_error_t *err)
{
    sbuf_t block = {0};
    if (spdy_headers_encode(z, h, n, &block, err) < 0) {
        sbuf_free(&block);
        return -1;
    }
    size_t fixed = type == SPDY_SYN_STREAM ? 10 : 4;
    put_control_head(out, type, flags, (uint32_t)(fixed + block.len));
    sbuf_put32(out, stream_id & 0x7fffffff);
    if (type == SPDY_SYN_STREAM) {
        uint8_t rest[6] = {0};
        sbuf_append(out, rest, sizeof(rest)); /* associated id, priority, slot */
    }
    sbuf_append(out, block.data, block.len);
    sbuf_free(&block);
    return 0;
}

void spdy_write_rst(sbuf_t *out, uint32_t stream_id, uint32_t status)
{
    put_control_head(out, SPDY_RST_STREAM, 0, 8);
    sbuf_put32(out, stream_id & 0x7fffffff);
    sbuf_put32(out, status);
}

void spdy_write_ping(sbuf_t *out, uint32_t id)
{
    put_control_head(out, SPDY_PING, 0, 4);
    sbuf_put32(out, id);
}

void spdy_write_goaway(sbuf_t *out, uint32_t last_stream_id, uint32_t status)
{
    put_control_head(out, SPDY_GOAWAY, 0, 8);
    sbuf_put32(out, last_stream_id & 0x7fffffff);
    sbuf_put32(out, status);
}
