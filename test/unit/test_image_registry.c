/* server/image: the registry client's retry policy (which statuses are
 * retried, backoff with Retry-After, the cap), the bearer token cache
 * (expiry, eviction, the size bound) and OCI annotations (manifest and
 * index parsing, the image record round trip). No network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/image/registry/registry-internal.h"
#include "server/image/store/store-internal.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIGEST "sha256:" HEX64

/* ---- retry policy ------------------------------------------------------------ */

static void test_retryable_status(void **state)
{
    static const struct {
        long code;
        bool retry;
    } table[] = {
        {429, true},  {500, true},  {502, true},  {503, true},  {504, true},
        {501, false}, {505, false}, {400, false}, {401, false}, {403, false},
        {404, false}, {408, false}, {200, false}, {301, false},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (registry_retryable_status(table[i].code) != table[i].retry)
            fail_msg("status %ld: want retry=%d", table[i].code, table[i].retry);
    }
}

static void test_retry_delay(void **state)
{
    const int64_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
    static const struct {
        int attempt;
        const char *retry_after;
        uint64_t want_ms;
    } table[] = {
        {0, NULL, REGISTRY_RETRY_BASE_MS},
        {1, NULL, REGISTRY_RETRY_BASE_MS * 2},
        {2, "", REGISTRY_RETRY_BASE_MS * 4},
        {0, "2", 2000},
        {0, "2 ", 2000},
        {1, "0", REGISTRY_RETRY_BASE_MS * 2}, /* never shorter than the backoff */
        {0, "3600", REGISTRY_RETRY_MAX_MS},   /* capped */
        {0, "99999999999999999999999", REGISTRY_RETRY_MAX_MS},
        {0, "-5", REGISTRY_RETRY_BASE_MS}, /* unparsable: backoff */
        {0, "soon", REGISTRY_RETRY_BASE_MS},
        {0, "Tue, 14 Nov 2023 22:13:23 GMT", 3000},                   /* an HTTP date 3 s ahead */
        {0, "Tue, 14 Nov 2023 22:00:00 GMT", REGISTRY_RETRY_BASE_MS}, /* in the past */
        {30, NULL, REGISTRY_RETRY_MAX_MS},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        uint64_t got = registry_retry_delay_ms(table[i].attempt, table[i].retry_after, now);
        if (got != table[i].want_ms)
            fail_msg("attempt %d, Retry-After `%s`: got %llu ms, want %llu", table[i].attempt,
                     table[i].retry_after ? table[i].retry_after : "(none)",
                     (unsigned long long)got, (unsigned long long)table[i].want_ms);
    }
}

/* ---- token cache --------------------------------------------------------------- */

static void test_tokens_expire_and_evict(void **state)
{
    registry_tokens_t *t = registry_tokens_new();
    registry_tokens_put(t, "a", "tok-a", 100, 50);
    registry_tokens_put(t, "b", "tok-b", 200, 50);
    assert_int_equal(registry_tokens_count(t), 2);

    cleanup_free char *a = registry_tokens_get(t, "a", 99);
    assert_non_null(a);
    assert_string_equal(a, "tok-a");
    assert_null(registry_tokens_get(t, "a", 100)); /* expired at 100 */
    assert_null(registry_tokens_get(t, "missing", 0));

    /* a put at 150 evicts "a" (expired) and keeps "b" */
    registry_tokens_put(t, "c", "tok-c", 300, 150);
    assert_int_equal(registry_tokens_count(t), 2);
    cleanup_free char *b = registry_tokens_get(t, "b", 150);
    assert_non_null(b);
    /* the same key replaces its entry */
    registry_tokens_put(t, "c", "tok-c2", 400, 150);
    cleanup_free char *c = registry_tokens_get(t, "c", 350);
    assert_string_equal(c, "tok-c2");
    /* everything expired: only the new entry stays */
    registry_tokens_put(t, "d", "tok-d", 1000, 500);
    assert_int_equal(registry_tokens_count(t), 1);
    registry_tokens_free(t);
}

static void test_tokens_bounded(void **state)
{
    registry_tokens_t *t = registry_tokens_new();
    for (int i = 0; i < REGISTRY_TOKENS_MAX + 10; i++) {
        cleanup_free char *key = xasprintf("k%d", i);
        registry_tokens_put(t, key, "tok", 1000, 0);
        assert_true(registry_tokens_count(t) <= REGISTRY_TOKENS_MAX);
    }
    cleanup_free char *last = registry_tokens_get(t, "k1033", 0);
    assert_non_null(last); /* the newest is always kept */
    registry_tokens_free(t);
}

/* The cache survives a helper process: export, import elsewhere; expired
 * entries and malformed text add nothing. */
static void test_tokens_export_import(void **state)
{
    registry_tokens_t *t = registry_tokens_new();
    registry_tokens_put(t, "live", "tok-live", 300, 100);
    registry_tokens_put(t, "old", "tok-old", 150, 100);
    cleanup_free char *text = registry_tokens_export(t);
    registry_tokens_free(t);

    registry_tokens_t *u = registry_tokens_new();
    registry_tokens_import(u, text, 200); /* "old" expired by 200 */
    assert_int_equal(registry_tokens_count(u), 1);
    cleanup_free char *live = registry_tokens_get(u, "live", 200);
    assert_non_null(live);
    assert_string_equal(live, "tok-live");
    assert_null(registry_tokens_get(u, "live", 300));
    registry_tokens_import(u, "not json", 200);
    registry_tokens_import(u, "{\"k\": [1, 2], \"j\": \"x\"}", 0);
    assert_int_equal(registry_tokens_count(u), 1);
    registry_tokens_free(u);

    registry_tokens_t *e = registry_tokens_new();
    cleanup_free char *empty = registry_tokens_export(e);
    assert_string_equal(empty, "{}");
    registry_tokens_free(e);
}

/* Every secret changes the key; anonymous never shares one with credentials. */
static void test_token_key_covers_credentials(void **state)
{
    char u[] = "bob", p1[] = "hunter2", p2[] = "wrong", it[] = "refresh", rt[] = "tok";
    const registry_creds_t variants[] = {
        {NULL, NULL, NULL, NULL}, {u, NULL, NULL, NULL},  {u, p1, NULL, NULL}, {u, p2, NULL, NULL},
        {NULL, NULL, it, NULL},   {NULL, NULL, NULL, rt}, {u, p1, it, NULL},
    };
    size_t n = sizeof(variants) / sizeof(variants[0]);
    char *keys[sizeof(variants) / sizeof(variants[0])];
    for (size_t i = 0; i < n; i++)
        keys[i] =
            registry_token_key("https://auth/token", "svc", "repository:a:pull", &variants[i]);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(keys[i], keys[j]);
        assert_null(strstr(keys[i], "hunter2")); /* secrets only as a hash */
    }
    char *again =
        registry_token_key("https://auth/token", "svc", "repository:a:pull", &variants[2]);
    assert_string_equal(again, keys[2]);
    free(again);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
}

static void test_realm_trusted(void **state)
{
    char *insecure[] = {"127.0.0.2:5001", "reg.local", NULL};
    static const struct {
        const char *realm;
        bool trusted;
    } table[] = {
        {"https://auth.example/token", true},
        {"HTTPS://auth.example:8443/token?x=1", true},
        {"http://auth.example/token", false},
        {"http://127.0.0.2:5001/token", true},
        {"http://127.0.0.2:5002/token", false},
        {"http://127.0.0.2/token", false},
        {"http://reg.local/token", true},
        {"http://reg.local:80/token", false},
        {"http://user@127.0.0.2:5001/token", true},
        {"ftp://reg.local/token", false},
        {"not a url", false},
        {"", false},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (registry_realm_trusted(table[i].realm, insecure) != table[i].trusted)
            fail_msg("realm `%s`: want %d", table[i].realm, table[i].trusted);
    assert_false(registry_realm_trusted("http://reg.local/token", NULL));
}

/* ---- annotations ------------------------------------------------------------------ */

static void manifest_freep(manifest_t **m)
{
    manifest_free(*m);
}

static void test_manifest_annotations(void **state)
{
    const char *body =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"digest\":\"" DIGEST "\",\"size\":1},\"layers\":[],"
        "\"annotations\":{\"org.opencontainers.image.title\":\"t\",\"n\":5,\"e\":\"\"}}";
    __attribute__((cleanup(manifest_freep))) manifest_t *m = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(manifest_parse(body, strlen(body), NULL, &m, &err), 0);
    assert_int_equal(json_object_size(m->annotations), 2); /* the number is dropped */
    assert_string_equal(
        json_string_value(json_object_get(m->annotations, "org.opencontainers.image.title")), "t");
    assert_string_equal(json_string_value(json_object_get(m->annotations, "e")), "");

    const char *index = "{\"schemaVersion\":2,\"manifests\":[],\"annotations\":{\"a\":\"b\"}}";
    __attribute__((cleanup(manifest_freep))) manifest_t *ix = NULL;
    assert_int_equal(manifest_parse(index, strlen(index), NULL, &ix, &err), 0);
    assert_true(ix->is_index);
    assert_string_equal(json_string_value(json_object_get(ix->annotations, "a")), "b");

    const char *none = "{\"schemaVersion\":2,\"config\":{\"digest\":\"" DIGEST
                       "\",\"size\":1},\"layers\":[],\"annotations\":[\"x\"]}";
    __attribute__((cleanup(manifest_freep))) manifest_t *n = NULL;
    assert_int_equal(manifest_parse(none, strlen(none), NULL, &n, &err), 0);
    assert_non_null(n->annotations);
    assert_int_equal(json_object_size(n->annotations), 0);
}

static void image_rec_freep(image_rec_t **r)
{
    image_rec_free(*r);
}

static void test_record_annotations_round_trip(void **state)
{
    image_rec_t rec = {
        .id = (char *)DIGEST,
        .repo_tags = (char *[]){(char *)"docker.io/library/a:1", NULL},
        .repo_digests = (char *[]){NULL},
        .manifest_digest = (char *)DIGEST,
        .config_json = (char *)"{}",
        .annotations = json_pack("{s:s, s:s}", "k", "v", "org.x", "y"),
    };
    cleanup_free char *json = image_rec_to_json(&rec);
    json_decref(rec.annotations);
    __attribute__((cleanup(image_rec_freep))) image_rec_t *back = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(image_rec_from_json(json, strlen(json), &back, &err), 0);
    assert_int_equal(json_object_size(back->annotations), 2);
    assert_string_equal(json_string_value(json_object_get(back->annotations, "org.x")), "y");

    /* records written before annotations existed still load */
    const char *old = "{\"id\":\"" DIGEST "\",\"repo_tags\":[],\"repo_digests\":[],"
                      "\"manifest_digest\":\"" DIGEST "\",\"size\":1,\"created_ns\":2,"
                      "\"layers\":[],\"config\":\"{}\"}";
    __attribute__((cleanup(image_rec_freep))) image_rec_t *legacy = NULL;
    assert_int_equal(image_rec_from_json(old, strlen(old), &legacy, &err), 0);
    assert_null(legacy->annotations);
    cleanup_free char *again = image_rec_to_json(legacy);
    assert_null(strstr(again, "annotations"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retryable_status),
        cmocka_unit_test(test_retry_delay),
        cmocka_unit_test(test_tokens_expire_and_evict),
        cmocka_unit_test(test_tokens_bounded),
        cmocka_unit_test(test_tokens_export_import),
        cmocka_unit_test(test_token_key_covers_credentials),
        cmocka_unit_test(test_realm_trusted),
        cmocka_unit_test(test_manifest_annotations),
        cmocka_unit_test(test_record_annotations_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
