/* Unit tests of server/streaming/: the SPDY/3.1 frame codec and header
 * compression (with the real SPDY/3 dictionary), WebSocket framing, the
 * token store (single use, expiry on an injected clock, the bound),
 * protocol negotiation and the exit status document. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>
#include <zlib.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/streaming/streaming-internal.h"

/* ---- SPDY ---- */

static void test_spdy_dictionary(void **state)
{
    size_t n = 0;
    const uint8_t *d = spdy_dictionary(&n);
    assert_int_equal(n, 1423);
    /* zlib identifies a preset dictionary by its Adler-32: the SPDY/3 one */
    assert_int_equal(adler32(1, d, (uInt)n), 0xe3c6a7c2);
    assert_memory_equal(d, "\0\0\0\7options\0\0\0\4head", 19);
    assert_memory_equal(d + n - 7, ",enq=0.", 7);
}

static void test_spdy_header_round_trip(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    spdy_zctx_t a, b;
    assert_int_equal(spdy_zctx_init(&a, &err), 0);
    assert_int_equal(spdy_zctx_init(&b, &err), 0);
    /* several blocks through the same pair of contexts, as on a connection */
    for (int round = 0; round < 3; round++) {
        cleanup_free char *big = xmalloc(10000);
        memset(big, 'a' + round, 9999);
        big[9999] = '\0';
        spdy_header_t h[] = {{"streamtype", "stdout"}, {"port", "8080"}, {"x-big", big}};
        sbuf_t block = {0};
        assert_int_equal(spdy_headers_encode(&a, h, 3, &block, &err), 0);
        assert_true(block.len < 200); /* compressed */
        spdy_headers_t got = {0};
        assert_int_equal(spdy_headers_decode(&b, block.data, block.len, &got, &err), 0);
        assert_int_equal(got.n, 3);
        assert_string_equal(spdy_headers_get(&got, "streamtype"), "stdout");
        assert_string_equal(spdy_headers_get(&got, "port"), "8080");
        assert_string_equal(spdy_headers_get(&got, "x-big"), big);
        assert_null(spdy_headers_get(&got, "requestid"));
        spdy_headers_free(&got);
        sbuf_free(&block);
    }
    spdy_zctx_free(&a);
    spdy_zctx_free(&b);
}

/* A block compressed by plain zlib with the dictionary (as another SPDY
 * implementation would), with upper-case names that must come out lower. */
static void test_spdy_header_decode_foreign(void **state)
{
    const uint8_t raw[] = "\0\0\0\1\0\0\0\x0aStreamType\0\0\0\5error";
    size_t dn;
    const uint8_t *d = spdy_dictionary(&dn);
    z_stream z = {0};
    assert_int_equal(deflateInit(&z, 9), Z_OK);
    assert_int_equal(deflateSetDictionary(&z, d, (uInt)dn), Z_OK);
    uint8_t out[256];
    z.next_in = (uint8_t *)raw;
    z.avail_in = sizeof(raw) - 1;
    z.next_out = out;
    z.avail_out = sizeof(out);
    assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
    size_t len = sizeof(out) - z.avail_out;
    deflateEnd(&z);

    cri_error_t err = CRI_ERROR_INIT;
    spdy_zctx_t c;
    assert_int_equal(spdy_zctx_init(&c, &err), 0);
    spdy_headers_t got = {0};
    assert_int_equal(spdy_headers_decode(&c, out, len, &got, &err), 0);
    assert_string_equal(spdy_headers_get(&got, "streamtype"), "error");
    spdy_headers_free(&got);
    spdy_zctx_free(&c);
}

static void test_spdy_header_decode_garbage(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    spdy_zctx_t c;
    assert_int_equal(spdy_zctx_init(&c, &err), 0);
    const uint8_t junk[] = {0x78, 0xbb, 0xdf, 0xa2, 0x51, 0xb2, 0x11, 0x22, 0x33};
    spdy_headers_t got = {0};
    assert_int_equal(spdy_headers_decode(&c, junk, sizeof(junk), &got, &err), -1);
    assert_int_equal(err.status, EPROTO);
    spdy_zctx_free(&c);

    /* a well-compressed block whose count claims more pairs than it holds */
    spdy_zctx_t a, b;
    assert_int_equal(spdy_zctx_init(&a, &err), 0);
    assert_int_equal(spdy_zctx_init(&b, &err), 0);
    sbuf_t block = {0};
    spdy_header_t h[] = {{"a", "b"}};
    assert_int_equal(spdy_headers_encode(&a, h, 1, &block, &err), 0);
    /* re-encode by hand: count 5, one pair */
    sbuf_t raw = {0};
    sbuf_put32(&raw, 5);
    sbuf_put32(&raw, 1);
    sbuf_append(&raw, "a", 1);
    sbuf_put32(&raw, 1);
    sbuf_append(&raw, "b", 1);
    a.out.next_in = raw.data;
    a.out.avail_in = (uInt)raw.len;
    uint8_t out[128];
    a.out.next_out = out;
    a.out.avail_out = sizeof(out);
    assert_int_equal(deflate(&a.out, Z_SYNC_FLUSH), Z_OK);
    spdy_headers_t ok = {0};
    assert_int_equal(spdy_headers_decode(&b, block.data, block.len, &ok, &err), 0);
    spdy_headers_free(&ok);
    cri_error_clear(&err);
    assert_int_equal(spdy_headers_decode(&b, out, sizeof(out) - a.out.avail_out, &got, &err), -1);
    assert_int_equal(err.status, EPROTO);
    sbuf_free(&raw);
    sbuf_free(&block);
    spdy_zctx_free(&a);
    spdy_zctx_free(&b);
}

static void test_spdy_frames_round_trip(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    spdy_zctx_t a, b;
    assert_int_equal(spdy_zctx_init(&a, &err), 0);
    assert_int_equal(spdy_zctx_init(&b, &err), 0);
    sbuf_t out = {0};
    spdy_header_t h[] = {{"streamtype", "error"}};
    assert_int_equal(spdy_write_syn(&out, &a, SPDY_SYN_STREAM, 1, SPDY_FLAG_FIN, h, 1, &err), 0);
    assert_int_equal(spdy_write_syn(&out, &a, SPDY_SYN_REPLY, 3, 0, NULL, 0, &err), 0);
    spdy_write_data(&out, 5, SPDY_FLAG_FIN, "hello", 5);
    spdy_write_data(&out, 7, 0, NULL, 0);
    spdy_write_rst(&out, 9, SPDY_RST_CANCEL);
    spdy_write_ping(&out, 0x01020304);
    spdy_write_goaway(&out, 11, 1);

    /* the control head: C bit, version 3, type */
    assert_int_equal(out.data[0], 0x80);
    assert_int_equal(out.data[1], 3);
    assert_int_equal(out.data[3], SPDY_SYN_STREAM);

    /* every strict prefix of a frame asks for more bytes */
    spdy_frame_t f;
    long first = spdy_frame_parse(out.data, out.len, &f, &err);
    assert_true(first > 8);
    for (long i = 0; i < first; i++)
        assert_int_equal(spdy_frame_parse(out.data, (size_t)i, &f, &err), 0);

    size_t pos = 0;
    struct {
        bool control;
        uint16_t type;
        uint8_t flags;
        uint32_t stream, value;
    } want[] = {
        {true, SPDY_SYN_STREAM, SPDY_FLAG_FIN, 1, 0},
        {true, SPDY_SYN_REPLY, 0, 3, 0},
        {false, 0, SPDY_FLAG_FIN, 5, 0},
        {false, 0, 0, 7, 0},
        {true, SPDY_RST_STREAM, 0, 9, SPDY_RST_CANCEL},
        {true, SPDY_PING, 0, 0, 0x01020304},
        {true, SPDY_GOAWAY, 0, 11, 1},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        long n = spdy_frame_parse(out.data + pos, out.len - pos, &f, &err);
        assert_true(n > 0);
        assert_int_equal(f.control, want[i].control);
        if (f.control)
            assert_int_equal(f.type, want[i].type);
        assert_int_equal(f.flags, want[i].flags);
        assert_int_equal(f.stream_id, want[i].stream);
        assert_int_equal(f.value, want[i].value);
        if (i == 0) {
            spdy_headers_t got = {0};
            assert_int_equal(spdy_headers_decode(&b, f.payload, f.payload_len, &got, &err), 0);
            assert_string_equal(spdy_headers_get(&got, "streamtype"), "error");
            spdy_headers_free(&got);
        } else if (i == 1) {
            spdy_headers_t got = {0};
            assert_int_equal(spdy_headers_decode(&b, f.payload, f.payload_len, &got, &err), 0);
            assert_int_equal(got.n, 0);
            spdy_headers_free(&got);
        } else if (i == 2) {
            assert_int_equal(f.payload_len, 5);
            assert_memory_equal(f.payload, "hello", 5);
        }
        pos += (size_t)n;
    }
    assert_int_equal(pos, out.len);
    sbuf_free(&out);
    spdy_zctx_free(&a);
    spdy_zctx_free(&b);
}

static void test_spdy_frame_errors(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    spdy_frame_t f;
    /* SPDY/2 control frame */
    const uint8_t v2[] = {0x80, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1};
    assert_int_equal(spdy_frame_parse(v2, sizeof(v2), &f, &err), -1);
    assert_int_equal(err.status, EPROTO);
    /* PING with 3 bytes, RST_STREAM with 4 */
    const uint8_t ping[] = {0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x03, 0, 0, 1};
    assert_int_equal(spdy_frame_parse(ping, sizeof(ping), &f, &err), -1);
    const uint8_t rst[] = {0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1};
    assert_int_equal(spdy_frame_parse(rst, sizeof(rst), &f, &err), -1);
    /* SYN_STREAM shorter than its fixed part */
    const uint8_t syn[] = {0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0, 1};
    assert_int_equal(spdy_frame_parse(syn, sizeof(syn), &f, &err), -1);
    /* a data frame larger than the limit is refused from its head alone */
    const uint8_t huge[] = {0x00, 0x00, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff};
    assert_int_equal(spdy_frame_parse(huge, sizeof(huge), &f, &err), -1);
    /* SETTINGS and WINDOW_UPDATE parse (and are ignored by sessions) */
    const uint8_t settings[] = {0x80, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0};
    assert_int_equal(spdy_frame_parse(settings, sizeof(settings), &f, &err), 12);
    assert_int_equal(f.type, SPDY_SETTINGS);
    const uint8_t wu[] = {0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08,
                          0,    0,    0,    1,    0x80, 0,    0x10, 0};
    assert_int_equal(spdy_frame_parse(wu, sizeof(wu), &f, &err), 16);
    assert_int_equal(f.value, 0x1000); /* reserved bit masked */
}

/* ---- WebSocket ---- */

static void test_ws_accept_key(void **state)
{
    /* RFC 6455 section 1.3 */
    cleanup_free char *k = ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==");
    assert_string_equal(k, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_ws_frame_sizes_and_masking(void **state)
{
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t sizes[] = {0, 5, 125, 126, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        cleanup_free uint8_t *p = xmalloc(n + 1);
        for (size_t k = 0; k < n; k++)
            p[k] = (uint8_t)(k * 7);
        sbuf_t out = {0};
        ws_write_frame(&out, WS_BINARY, true, mask, p, n);
        size_t head = n < 126 ? 2 : n <= 0xffff ? 4 : 10;
        assert_int_equal(out.len, head + 4 + n);
        if (n > 0) /* masked on the wire */
            assert_int_not_equal(out.data[head + 4], p[0] ^ 0);
        cri_error_t err = CRI_ERROR_INIT;
        ws_frame_t f;
        for (size_t k = 0; k < head + 4 + (n ? 1 : 0) && k < out.len; k++)
            assert_int_equal(ws_frame_parse(out.data, k, true, 1 << 20, &f, &err), 0);
        assert_int_equal(ws_frame_parse(out.data, out.len, true, 1 << 20, &f, &err), (long)out.len);
        assert_true(f.fin && f.masked);
        assert_int_equal(f.opcode, WS_BINARY);
        assert_int_equal(f.payload_len, n);
        if (n)
            assert_memory_equal(f.payload, p, n);
        sbuf_free(&out);
    }
}

static void test_ws_frame_rules(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    ws_frame_t f;
    const uint8_t mask[4] = {1, 2, 3, 4};
    sbuf_t out = {0};
    /* unmasked from a client */
    ws_write_frame(&out, WS_TEXT, true, NULL, "hi", 2);
    assert_int_equal(ws_frame_parse(out.data, out.len, true, 100, &f, &err), -1);
    assert_int_equal(err.status, EPROTO);
    /* ... but fine where masks are not required (client side) */
    assert_int_equal(ws_frame_parse(out.data, out.len, false, 100, &f, &err), 4);
    out.len = 0;
    /* control frames: at most 125 bytes, never fragmented */
    uint8_t big[126] = {0};
    ws_write_frame(&out, WS_PING, true, mask, big, sizeof(big));
    assert_int_equal(ws_frame_parse(out.data, out.len, true, 1000, &f, &err), -1);
    out.len = 0;
    ws_write_frame(&out, WS_PING, false, mask, "x", 1);
    assert_int_equal(ws_frame_parse(out.data, out.len, true, 1000, &f, &err), -1);
    out.len = 0;
    /* reserved bits and opcodes */
    ws_write_frame(&out, WS_BINARY, true, mask, "x", 1);
    out.data[0] |= 0x40;
    assert_int_equal(ws_frame_parse(out.data, out.len, true, 1000, &f, &err), -1);
    out.data[0] = 0x83; /* opcode 3 is reserved */
    assert_int_equal(ws_frame_parse(out.data, out.len, true, 1000, &f, &err), -1);
    out.len = 0;
    /* past the size limit */
    ws_write_frame(&out, WS_BINARY, true, mask, big, 100);
    assert_int_equal(ws_frame_parse(out.data, out.len, true, 99, &f, &err), -1);
    assert_int_equal(err.status, EMSGSIZE);
    sbuf_free(&out);
}

/* Feeds the frames in buf through a reader; returns the messages joined
 * as "op:payload;" text. */
static char *reassemble(uint8_t *buf, size_t len, size_t max, int *ret_rc)
{
    ws_reader_t r = {0};
    sbuf_t text = {0};
    size_t pos = 0;
    cri_error_t err = CRI_ERROR_INIT;
    *ret_rc = 0;
    while (pos < len) {
        ws_frame_t f;
        long n = ws_frame_parse(buf + pos, len - pos, true, 1 << 20, &f, &err);
        assert_true(n > 0);
        pos += (size_t)n;
        uint8_t op;
        const uint8_t *p;
        size_t pn;
        int rc = ws_reader_feed(&r, &f, max, &op, &p, &pn, &err);
        if (rc < 0) {
            *ret_rc = -err.status;
            break;
        }
        if (rc == 1) {
            char head[8];
            snprintf(head, sizeof(head), "%u:", op);
            sbuf_append(&text, head, strlen(head));
            sbuf_append(&text, p, pn);
            sbuf_append(&text, ";", 1);
        }
    }
    sbuf_append(&text, "", 1);
    ws_reader_free(&r);
    return (char *)text.data;
}

static void test_ws_fragmentation(void **state)
{
    const uint8_t mask[4] = {9, 8, 7, 6};
    sbuf_t out = {0};
    ws_write_frame(&out, WS_BINARY, false, mask, "abc", 3);
    ws_write_frame(&out, WS_PING, true, mask, "p", 1); /* between fragments */
    ws_write_frame(&out, WS_CONT, false, mask, "def", 3);
    ws_write_frame(&out, WS_CONT, true, mask, "g", 1);
    ws_write_frame(&out, WS_TEXT, true, mask, "whole", 5);
    ws_write_frame(&out, WS_CLOSE, true, mask, "\x03\xe8", 2);
    int rc;
    cleanup_free char *got = reassemble(out.data, out.len, 100, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(got, "9:p;2:abcdefg;1:whole;8:\x03\xe8;");
    out.len = 0;

    /* continuation with nothing to continue */
    ws_write_frame(&out, WS_CONT, true, mask, "x", 1);
    cleanup_free char *bad1 = reassemble(out.data, out.len, 100, &rc);
    assert_int_equal(rc, -EPROTO);
    out.len = 0;
    /* a new message inside a fragmented one */
    ws_write_frame(&out, WS_BINARY, false, mask, "x", 1);
    ws_write_frame(&out, WS_BINARY, true, mask, "y", 1);
    cleanup_free char *bad2 = reassemble(out.data, out.len, 100, &rc);
    assert_int_equal(rc, -EPROTO);
    out.len = 0;
    /* fragments adding up past the limit */
    ws_write_frame(&out, WS_BINARY, false, mask, "12345", 5);
    ws_write_frame(&out, WS_CONT, true, mask, "67890", 5);
    cleanup_free char *bad3 = reassemble(out.data, out.len, 8, &rc);
    assert_int_equal(rc, -EMSGSIZE);
    sbuf_free(&out);
}

static void test_ws_base64(void **state)
{
    const char *cases[][2] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foo\n", "Zm9vCg=="}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char enc[32];
        uint8_t dec[32];
        size_t n = ws_base64_encode(enc, cases[i][0], strlen(cases[i][0]));
        assert_int_equal(n, strlen(cases[i][1]));
        assert_string_equal(enc, cases[i][1]);
        long k = ws_base64_decode(dec, cases[i][1], strlen(cases[i][1]));
        assert_int_equal(k, (long)strlen(cases[i][0]));
        assert_memory_equal(dec, cases[i][0], (size_t)k);
    }
    uint8_t dec[32];
    assert_int_equal(ws_base64_decode(dec, "Zm9", 3), -1);
    assert_int_equal(ws_base64_decode(dec, "Zm9*", 4), -1);
}

/* ---- tokens ---- */

typedef struct fake_clock {
    int64_t now;
} fake_clock_t;

static int64_t fake_now(void *data)
{
    return ((fake_clock_t *)data)->now;
}

static streaming_request_t *request(const char *id)
{
    streaming_request_t *r = xcalloc(1, sizeof(*r));
    r->kind = STREAMING_EXEC;
    r->container_id = xstrdup(id);
    r->cmd = xcalloc(2, sizeof(char *));
    r->cmd[0] = xstrdup("sh");
    return r;
}

static void test_token_single_use(void **state)
{
    fake_clock_t clock = {1000};
    token_store_t *t = token_store_new(60000, 10, fake_now, &clock);
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_free char *a = NULL;
    cleanup_free char *b = NULL;
    assert_int_equal(token_store_insert(t, request("a"), &a, &err), 0);
    assert_int_equal(token_store_insert(t, request("b"), &b, &err), 0);
    assert_int_equal(strlen(a), 22);
    assert_string_not_equal(a, b);
    for (const char *c = a; *c; c++)
        assert_true(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *c));
    assert_null(token_store_consume(t, "nope"));
    streaming_request_t *r = token_store_consume(t, b);
    assert_non_null(r);
    assert_string_equal(r->container_id, "b");
    streaming_request_free(r);
    assert_null(token_store_consume(t, b)); /* used */
    assert_int_equal(token_store_count(t), 1);
    token_store_free(t); /* frees a's request */
}

static void test_token_expiry(void **state)
{
    fake_clock_t clock = {0};
    token_store_t *t = token_store_new(60000, 10, fake_now, &clock);
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_free char *a = NULL;
    cleanup_free char *b = NULL;
    assert_int_equal(token_store_insert(t, request("a"), &a, &err), 0);
    clock.now = 30 * 1000000000LL;
    assert_int_equal(token_store_insert(t, request("b"), &b, &err), 0);
    clock.now = 60 * 1000000000LL - 1; /* a: one ns left */
    streaming_request_t *r = token_store_consume(t, a);
    assert_non_null(r);
    streaming_request_free(r);
    clock.now = 90 * 1000000000LL; /* b: exactly 60 s old */
    assert_null(token_store_consume(t, b));
    assert_int_equal(token_store_count(t), 0);
    token_store_free(t);
}

static void test_token_bound(void **state)
{
    fake_clock_t clock = {0};
    token_store_t *t = token_store_new(60000, 3, fake_now, &clock);
    cri_error_t err = CRI_ERROR_INIT;
    char *tok[5] = {0};
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof(id), "c%d", i);
        clock.now += 1000;
        assert_int_equal(token_store_insert(t, request(id), &tok[i], &err), 0);
    }
    assert_int_equal(token_store_count(t), 3);
    assert_null(token_store_consume(t, tok[0])); /* the oldest were evicted */
    assert_null(token_store_consume(t, tok[1]));
    for (int i = 2; i < 5; i++) {
        streaming_request_t *r = token_store_consume(t, tok[i]);
        assert_non_null(r);
        char id[8];
        snprintf(id, sizeof(id), "c%d", i);
        assert_string_equal(r->container_id, id);
        streaming_request_free(r);
    }
    for (int i = 0; i < 5; i++)
        free(tok[i]);
    token_store_free(t);
}

/* ---- negotiation and status ---- */

static const struct neg_case {
    streaming_kind_t kind;
    bool ws;
    const char *offers[3];
    size_t n;
    const char *want; /* NULL = refused */
    stream_proto_t proto;
    bool base64;
} neg_cases[] = {
    {STREAMING_EXEC,
     false,
     {"v4.channel.k8s.io", "channel.k8s.io"},
     2,
     "v4.channel.k8s.io",
     PROTO_V4,
     false},
    {STREAMING_EXEC,
     false,
     {"v2.channel.k8s.io", "v4.channel.k8s.io"},
     2,
     "v2.channel.k8s.io",
     PROTO_V2,
     false},
    {STREAMING_EXEC,
     false,
     {"v9.channel.k8s.io, v3.channel.k8s.io"},
     1,
     "v3.channel.k8s.io",
     PROTO_V3,
     false},
    {STREAMING_ATTACH, false, {" channel.k8s.io "}, 1, "channel.k8s.io", PROTO_V1, false},
    {STREAMING_EXEC, false, {"v5.channel.k8s.io"}, 1, NULL, PROTO_NONE, false},
    {STREAMING_EXEC, false, {"portforward.k8s.io"}, 1, NULL, PROTO_NONE, false},
    {STREAMING_EXEC, false, {NULL}, 0, NULL, PROTO_NONE, false},
    {STREAMING_PORTFORWARD,
     false,
     {"portforward.k8s.io"},
     1,
     "portforward.k8s.io",
     PROTO_PORTFORWARD,
     false},
    {STREAMING_PORTFORWARD, false, {"v4.channel.k8s.io"}, 1, NULL, PROTO_NONE, false},
    {STREAMING_EXEC,
     true,
     {"v5.channel.k8s.io", "v4.channel.k8s.io"},
     2,
     "v5.channel.k8s.io",
     PROTO_V5,
     false},
    {STREAMING_EXEC,
     true,
     {"v4.base64.channel.k8s.io"},
     1,
     "v4.base64.channel.k8s.io",
     PROTO_V4,
     true},
    {STREAMING_ATTACH, true, {"base64.channel.k8s.io"}, 1, "base64.channel.k8s.io", PROTO_V1, true},
    {STREAMING_EXEC, true, {NULL}, 0, "", PROTO_V1, false},
    {STREAMING_EXEC, true, {"v3.channel.k8s.io"}, 1, NULL, PROTO_NONE, false},
    {STREAMING_PORTFORWARD,
     true,
     {"v4.channel.k8s.io"},
     1,
     "v4.channel.k8s.io",
     PROTO_PORTFORWARD,
     false},
    {STREAMING_PORTFORWARD, true, {"v5.channel.k8s.io"}, 1, NULL, PROTO_NONE, false},
    {STREAMING_PORTFORWARD, true, {NULL}, 0, "", PROTO_PORTFORWARD, false},
};

static void test_negotiation_tables(void **state)
{
    for (size_t i = 0; i < sizeof(neg_cases) / sizeof(neg_cases[0]); i++) {
        const struct neg_case *nc = &neg_cases[i];
        const proto_choice_t *c = streaming_negotiate(nc->kind, nc->ws, nc->offers, nc->n);
        if (!nc->want) {
            assert_null(c);
            continue;
        }
        assert_non_null(c);
        assert_string_equal(c->name, nc->want);
        assert_int_equal(c->proto, nc->proto);
        assert_int_equal(c->base64, nc->base64);
    }
    assert_non_null(strstr(streaming_supported(STREAMING_EXEC, false), "v4.channel.k8s.io"));
}

static void test_status_json(void **state)
{
    cleanup_free char *ok = streaming_status_json(0, NULL);
    assert_string_equal(ok, "{\"metadata\":{},\"status\":\"Success\"}");

    cleanup_free char *three = streaming_status_json(3, NULL);
    json_error_t jerr;
    json_t *st = json_loads(three, 0, &jerr);
    assert_non_null(st);
    const char *status, *reason, *cause_reason, *cause_msg;
    assert_int_equal(json_unpack(st, "{s:s, s:s, s:{s:[{s:s, s:s}]}}", "status", &status, "reason",
                                 &reason, "details", "causes", "reason", &cause_reason, "message",
                                 &cause_msg),
                     0);
    assert_string_equal(status, "Failure");
    assert_string_equal(reason, "NonZeroExitCode");
    assert_string_equal(cause_reason, "ExitCode");
    assert_string_equal(cause_msg, "3");
    json_decref(st);

    cleanup_free char *internal = streaming_status_json(0, "container `x` not found");
    st = json_loads(internal, 0, &jerr);
    assert_non_null(st);
    assert_string_equal(json_string_value(json_object_get(st, "reason")), "InternalError");
    assert_int_equal(json_integer_value(json_object_get(st, "code")), 500);
    json_decref(st);
}

/* ---- TLS (tls.c) ---- */

/* A self-signed P-256 certificate for 127.0.0.1, its key, and another key. */
static const char TEST_CERT[] = "-----BEGIN CERTIFICATE-----\n"
                                "MIIBkDCCATagAwIBAgIUBrx3BZOP6kiE5LS6m+f8byd0rXcwCgYIKoZIzj0EAwIw\n"
                                "FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyMzAyNDQyOVoYDzIxMjYxMDMw\n"
                                "MDI0NDI5WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO\n"
                                "PQMBBwNCAAQmx19VKxRwwq03doHvKSwdgZtYkvpGOMQsMyD7MynKX93j/oW7uzxz\n"
                                "sU0dnA8nGsOYeZtCsOPlgS+SLAsi6R74o2QwYjAdBgNVHQ4EFgQUiQMWtayTw6NT\n"
                                "r/onKwyqPHQp/T8wHwYDVR0jBBgwFoAUiQMWtayTw6NTr/onKwyqPHQp/T8wDwYD\n"
                                "VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC\n"
                                "IBiKGoJ9T+8RmipNTr6uRBUjWBQzZ8s3AQefaWrai2+PAiEA7LwrI79PsQOr6Ngf\n"
                                "V2/v/DosieE04dBqJqk56RUmySw=\n"
                                "-----END CERTIFICATE-----\n";
static const char TEST_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLIipyMG69LHS2Y/Z\n"
                               "76bQJ3FpN4pCasIvCszE20GEpTGhRANCAAQmx19VKxRwwq03doHvKSwdgZtYkvpG\n"
                               "OMQsMyD7MynKX93j/oW7uzxzsU0dnA8nGsOYeZtCsOPlgS+SLAsi6R74\n"
                               "-----END PRIVATE KEY-----\n";
static const char OTHER_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJcbN0ZJtA2KTadZs\n"
                                "vHb6TZqq6Ea9lbb9zJmYQmuPbb+hRANCAAQvs5ZSUs/unFzYvJOO7sYaSgNJ7Kkk\n"
                                "mrvJJXVfGQK9vtcQNXovFM+BZmyRktCt3Qkww78gx5uvL09t7HfA2oHy\n"
                                "-----END PRIVATE KEY-----\n";

static char *tls_file(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(write_file_atomic(path, text, strlen(text), 0600, &err), 0);
    return path;
}

static void test_tls_load(void **state)
{
    char tmpl[] = "/tmp/cricket-tls-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    cleanup_free char *cert = tls_file(tmpl, "c.pem", TEST_CERT);
    cleanup_free char *key = tls_file(tmpl, "k.pem", TEST_KEY);
    cleanup_free char *other = tls_file(tmpl, "o.pem", OTHER_KEY);
    cleanup_free char *text = tls_file(tmpl, "t.txt", "not pem\n");
    cleanup_free char *missing = xasprintf("%s/missing.pem", tmpl);
    static const struct {
        int cert, key, ca; /* 0 unset, 1 cert, 2 key, 3 other key, 4 text, 5 missing */
        int status;        /* 0 = loads */
        const char *msg;
    } cases[] = {
        {0, 0, 0, 0, NULL},
        {1, 2, 0, 0, NULL},
        {1, 2, 1, 0, NULL},
        {1, 0, 0, EINVAL, "must both be set"},
        {0, 2, 0, EINVAL, "must both be set"},
        {0, 0, 1, EINVAL, "must both be set"},
        {5, 2, 0, ENOENT, "read streaming.tls_cert"},
        {1, 5, 0, ENOENT, "read streaming.tls_key"},
        {1, 2, 5, ENOENT, "read streaming.tls_client_ca"},
        {4, 2, 0, EINVAL, "is not a PEM file"},
        {1, 3, 0, EINVAL, "tls: load streaming.tls_cert and streaming.tls_key: "},
        {1, 2, 2, EINVAL, "tls: load streaming.tls_client_ca: "},
    };
    const char *paths[] = {"", cert, key, other, text, missing};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        streaming_tls_t *t = NULL;
        cri_error_t err = CRI_ERROR_INIT;
        int r = streaming_tls_load(paths[cases[i].cert], paths[cases[i].key], paths[cases[i].ca],
                                   &t, &err);
        if (cases[i].status == 0) {
            if (r != 0)
                fail_msg("case %zu: %s", i, err.msg);
            struct MHD_OptionItem opts[3];
            size_t n = streaming_tls_options(t, opts, 3);
            assert_int_equal(n, cases[i].cert ? (cases[i].ca ? 3 : 2) : 0);
            assert_true(cases[i].cert ? t != NULL : t == NULL);
            streaming_tls_free(t);
            continue;
        }
        assert_int_equal(r, -1);
        assert_null(t);
        assert_int_equal(err.status, cases[i].status);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: %s", i, err.msg);
    }

    /* a server with TLS hands out https:// URLs */
    streaming_config_t cfg = {
        .address = "127.0.0.1", .tls_cert = cert, .tls_key = key, .tls_client_ca = cert};
    streaming_server_t *srv = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(streaming_server_start(&cfg, &srv, &err), 0);
    cleanup_free char *want = xasprintf("https://127.0.0.1:%u", streaming_server_port(srv));
    assert_string_equal(streaming_server_base_url(srv), want);
    streaming_server_stop(srv);
    assert_int_equal(rm_rf(tmpl, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spdy_dictionary),
        cmocka_unit_test(test_spdy_header_round_trip),
        cmocka_unit_test(test_spdy_header_decode_foreign),
        cmocka_unit_test(test_spdy_header_decode_garbage),
        cmocka_unit_test(test_spdy_frames_round_trip),
        cmocka_unit_test(test_spdy_frame_errors),
        cmocka_unit_test(test_ws_accept_key),
        cmocka_unit_test(test_ws_frame_sizes_and_masking),
        cmocka_unit_test(test_ws_frame_rules),
        cmocka_unit_test(test_ws_fragmentation),
        cmocka_unit_test(test_ws_base64),
        cmocka_unit_test(test_token_single_use),
        cmocka_unit_test(test_token_expiry),
        cmocka_unit_test(test_token_bound),
        cmocka_unit_test(test_negotiation_tables),
        cmocka_unit_test(test_status_json),
        cmocka_unit_test(test_tls_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
