/* server/objstore.c: the generic object store behind the sandbox and
 * container stores: unique-prefix lookup and ambiguity, refcounts, name
 * reservation conflicts, a load that logs and skips bad records, and
 * persistence across a reopen of the LMDB store. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/objstore.h"
#include "server/record.h"
#include "server/store.h"

/* ---- a test object kind ---- */

typedef struct thing {
    char *id, *name;
    bool creating;
    int refs;
} thing_t;

static int things_freed;

static thing_t *thing(const char *id, const char *name)
{
    thing_t *t = xcalloc(1, sizeof(*t));
    t->id = xstrdup(id);
    t->name = xstrdup(name);
    t->refs = 1;
    return t;
}

static const char *t_id(const void *obj)
{
    return ((const thing_t *)obj)->id;
}

static const char *t_name(const void *obj)
{
    return ((const thing_t *)obj)->name;
}

static void t_ref(void *obj)
{
    ((thing_t *)obj)->refs++;
}

static void t_unref(void *obj)
{
    thing_t *t = obj;
    if (--t->refs > 0)
        return;
    free(t->id);
    free(t->name);
    free(t);
    things_freed++;
}

static char *t_encode(void *obj, bool creating)
{
    thing_t *t = obj;
    return record_dump(
        json_pack("{s:s, s:s, s:b}", "id", t->id, "name", t->name, "creating", creating));
}

static int t_fill(void *obj, json_t *o, bool *ret_creating, cri_error_t *err)
{
    thing_t *t = obj;
    const char *id, *name;
    int creating = 0;
    json_error_t je;
    if (json_unpack_ex(o, &je, 0, "{s:s, s:s, s:b}", "id", &id, "name", &name, "creating",
                       &creating) < 0)
        return cri_error_set(err, EINVAL, "%s", je.text);
    str_set(&t->id, id);
    str_set(&t->name, name);
    *ret_creating = creating;
    return 0;
}

static int t_decode(const char *text, size_t len, void **ret, cri_error_t *err)
{
    thing_t *t = thing("", "");
    if (record_parse(text, len, "thing record", t, t_fill, &t->creating, err) < 0) {
        t_unref(t);
        return -1;
    }
    *ret = t;
    return 0;
}

static const objstore_ops_t thing_ops = {
    .kind = STORE_IMAGES, /* any kind: the test store is its own */
    .what = "thing",
    .dup_what = "thing",
    .id_field = "thing_id",
    .id = t_id,
    .name = t_name,
    .ref = t_ref,
    .unref = t_unref,
    .encode = t_encode,
    .decode = t_decode,
};

/* ---- a temporary LMDB store ---- */

typedef struct fixture {
    char dir[64];
    store_t *db;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test-objstore-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(store_open(fx->dir, &fx->db, &err), 0);
    things_freed = 0;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    store_close(fx->db);
    cri_error_t err = CRI_ERROR_INIT;
    rm_rf(fx->dir, &err);
    free(fx);
    return 0;
}

/* ---- tests ---- */

static void test_prefix_lookup(void **state)
{
    things_freed = 0;
    objstore_t *s = objstore_new(&thing_ops, NULL);
    const char *ids[] = {"abc123", "abd456", "abc999", "ab"};
    cri_error_t err = CRI_ERROR_INIT;
    for (size_t i = 0; i < 4; i++) {
        thing_t *t = thing(ids[i], ids[i]);
        assert_int_equal(objstore_add(s, t, &err), 0);
        t_unref(t);
    }
    assert_int_equal(objstore_count(s), 4);

    void *got = NULL;
    assert_int_equal(objstore_get(s, "abd", &got, &err), 0);
    assert_string_equal(((thing_t *)got)->id, "abd456");
    t_unref(got);
    /* a full id wins over the longer ids it prefixes */
    assert_int_equal(objstore_get(s, "ab", &got, &err), 0);
    assert_string_equal(((thing_t *)got)->id, "ab");
    t_unref(got);
    assert_int_equal(objstore_get(s, "abc999", &got, &err), 0);
    assert_string_equal(((thing_t *)got)->id, "abc999");
    t_unref(got);

    cri_error_t amb = CRI_ERROR_INIT, none = CRI_ERROR_INIT, empty = CRI_ERROR_INIT;
    got = NULL;
    assert_int_equal(objstore_get(s, "abc", &got, &amb), -1);
    assert_int_equal(amb.status, EINVAL);
    assert_string_equal(amb.msg, "thing id prefix `abc` is ambiguous (2 matches)");
    assert_int_equal(objstore_get(s, "x", &got, &none), -1);
    assert_int_equal(none.status, ENOENT);
    assert_string_equal(none.msg, "thing `x` not found");
    assert_int_equal(objstore_get(s, "", &got, &empty), -1);
    assert_int_equal(empty.status, EINVAL);
    assert_string_equal(empty.msg, "thing_id is empty");
    assert_null(got);

    /* a taken id */
    thing_t *dup = thing("ab", "other");
    cri_error_t derr = CRI_ERROR_INIT;
    assert_int_equal(objstore_add(s, dup, &derr), -1);
    assert_int_equal(derr.status, EEXIST);
    assert_string_equal(derr.msg, "thing `ab` already exists");
    t_unref(dup);

    /* after a removal the prefix is unique again */
    assert_int_equal(objstore_get(s, "abc9", &got, &err), 0);
    objstore_remove(s, got);
    t_unref(got);
    assert_int_equal(objstore_get(s, "abc", &got, &err), 0);
    assert_string_equal(((thing_t *)got)->id, "abc123");
    t_unref(got);
    objstore_free(s);
    assert_int_equal(things_freed, 5);
}

static bool id_starts_with_a(const void *obj, void *data)
{
    return ((const thing_t *)obj)->id[0] == *(const char *)data;
}

static void test_refcounts_and_lists(void **state)
{
    things_freed = 0;
    objstore_t *s = objstore_new(&thing_ops, NULL);
    thing_t *a = thing("a1", "n1"), *b = thing("b1", "n2");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(objstore_add(s, a, &err), 0);
    assert_int_equal(objstore_add(s, b, &err), 0);
    assert_int_equal(a->refs, 2); /* ours and the store's */

    void *got = NULL;
    assert_int_equal(objstore_get(s, "a", &got, &err), 0);
    assert_int_equal(a->refs, 3);
    t_unref(got);

    void **list = NULL;
    size_t n = 0;
    objstore_list(s, NULL, NULL, &list, &n);
    assert_int_equal(n, 2);
    assert_ptr_equal(list[0], a); /* insertion order */
    assert_ptr_equal(list[1], b);
    assert_int_equal(b->refs, 3);
    /* removal leaves the snapshot's reference alone */
    objstore_remove(s, a);
    objstore_remove(s, a); /* absent: no-op */
    assert_int_equal(a->refs, 2);
    assert_int_equal(objstore_count(s), 1);
    objstore_list_free(s, list, n);
    assert_int_equal(a->refs, 1);
    assert_int_equal(b->refs, 2);

    char want = 'b';
    objstore_list(s, id_starts_with_a, &want, &list, &n);
    assert_int_equal(n, 1);
    objstore_list_free(s, list, n);
    want = 'a';
    objstore_list(s, id_starts_with_a, &want, &list, &n);
    assert_int_equal(n, 0);
    objstore_list_free(s, list, n);
    assert_false(objstore_any(s, id_starts_with_a, &want));
    want = 'b';
    assert_true(objstore_any(s, id_starts_with_a, &want));

    objstore_free(s);
    assert_int_equal(b->refs, 1);
    assert_int_equal(things_freed, 0);
    t_unref(a);
    t_unref(b);
    assert_int_equal(things_freed, 2);

    /* a memory-only store has nothing to write */
    objstore_t *mem = objstore_new(&thing_ops, NULL);
    thing_t *t = thing("x", "y");
    cri_error_t perr = CRI_ERROR_INIT;
    assert_int_equal(objstore_persist(mem, t, false, &perr), -1);
    assert_int_equal(perr.status, EINVAL);
    t_unref(t);
    objstore_free(mem);
}

static bool record_has(store_t *db, const char *id, const char *needle)
{
    void *val = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (store_get1(db, STORE_IMAGES, id, &val, NULL, &err) < 0)
        return false;
    bool found = strstr(val, needle) != NULL;
    free(val);
    return found;
}

static void test_reservation(void **state)
{
    fixture_t *fx = *state;
    objstore_t *s = objstore_new(&thing_ops, fx->db);
    thing_t *a = thing("id-a", "shared"), *b = thing("id-b", "shared");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(objstore_persist(s, a, true, &err), 0);
    assert_true(record_has(fx->db, "id-a", "\"creating\":true"));
    /* reserving again for the same owner is fine; a plain persist clears the mark */
    assert_int_equal(objstore_persist(s, a, true, &err), 0);
    assert_int_equal(objstore_persist(s, a, false, &err), 0);
    assert_true(record_has(fx->db, "id-a", "\"creating\":false"));

    cri_error_t dup = CRI_ERROR_INIT;
    assert_int_equal(objstore_persist(s, b, true, &dup), -1);
    assert_int_equal(dup.status, EEXIST);
    assert_non_null(strstr(dup.msg, "`shared`"));
    assert_non_null(strstr(dup.msg, "id-a"));
    assert_false(record_has(fx->db, "id-b", "id-b")); /* nothing written */

    /* forget releases the name; twice is fine */
    assert_int_equal(objstore_forget(s, a, &err), 0);
    assert_int_equal(objstore_forget(s, a, &err), 0);
    assert_false(record_has(fx->db, "id-a", "id-a"));
    assert_int_equal(objstore_persist(s, b, true, &err), 0);
    /* forgetting a never releases the name b holds now */
    assert_int_equal(objstore_forget(s, a, &err), 0);
    thing_t *c = thing("id-c", "shared");
    cri_error_t dup2 = CRI_ERROR_INIT;
    assert_int_equal(objstore_persist(s, c, true, &dup2), -1);
    assert_non_null(strstr(dup2.msg, "id-b"));
    t_unref(a);
    t_unref(b);
    t_unref(c);
    objstore_free(s);
}

struct captured {
    char lines[8][512];
    int n;
};

static void capture(log_level_t level, const char *line, void *data)
{
    struct captured *c = data;
    if (level == LOG_LEVEL_WARN && c->n < 8)
        snprintf(c->lines[c->n++], sizeof(c->lines[0]), "%s", line);
}

static void test_load_skips_and_logs(void **state)
{
    fixture_t *fx = *state;
    objstore_t *s = objstore_new(&thing_ops, fx->db);
    thing_t *good = thing("good", "n-good"), *half = thing("half", "n-half");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(objstore_persist(s, good, false, &err), 0);
    assert_int_equal(objstore_persist(s, half, true, &err), 0);
    static const char broken[] = "{\"id\":\"broken\"";
    static const char wrong[] = "{\"id\":\"elsewhere\",\"name\":\"n\",\"creating\":false}";
    static const char shape[] = "{\"id\":7}";
    assert_int_equal(store_put1(fx->db, STORE_IMAGES, "broken", broken, strlen(broken), &err), 0);
    assert_int_equal(store_put1(fx->db, STORE_IMAGES, "wrong", wrong, strlen(wrong), &err), 0);
    assert_int_equal(store_put1(fx->db, STORE_IMAGES, "shape", shape, strlen(shape), &err), 0);
    objstore_free(s);

    struct captured cap = {0};
    log_set_handler(capture, &cap);
    s = objstore_new(&thing_ops, fx->db);
    size_t skipped = 0;
    int rc = objstore_load(s, &skipped, &err);
    log_set_handler(NULL, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(skipped, 3);
    assert_int_equal(objstore_count(s), 2);
    assert_int_equal(cap.n, 3);
    /* key order: broken, shape, wrong; each line names the key and the reason */
    assert_non_null(strstr(cap.lines[0], "load thing record `broken`: thing record: line"));
    assert_non_null(strstr(cap.lines[0], "skipping it"));
    assert_non_null(strstr(cap.lines[1], "`shape`: thing record:"));
    assert_non_null(strstr(cap.lines[2], "`wrong`: it holds id `elsewhere`"));

    void *got = NULL;
    assert_int_equal(objstore_get(s, "half", &got, &err), 0);
    assert_true(((thing_t *)got)->creating);
    t_unref(got);
    assert_int_equal(objstore_get(s, "good", &got, &err), 0);
    assert_false(((thing_t *)got)->creating);
    t_unref(got);

    /* loading again: every id is in memory already, so each is skipped */
    cap.n = 0;
    log_set_handler(capture, &cap);
    rc = objstore_load(s, &skipped, &err);
    log_set_handler(NULL, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(skipped, 5);
    assert_non_null(strstr(cap.lines[1], "`good`: thing `good` already exists"));
    t_unref(good);
    t_unref(half);
    objstore_free(s);
}

static void test_persistence_across_reopen(void **state)
{
    fixture_t *fx = *state;
    objstore_t *s = objstore_new(&thing_ops, fx->db);
    thing_t *a = thing("0123abcd", "kept");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(objstore_persist(s, a, true, &err), 0);
    assert_int_equal(objstore_persist(s, a, false, &err), 0);
    t_unref(a);
    objstore_free(s);
    store_close(fx->db);
    fx->db = NULL;

    assert_int_equal(store_open(fx->dir, &fx->db, &err), 0);
    s = objstore_new(&thing_ops, fx->db);
    assert_int_equal(objstore_load(s, NULL, &err), 0);
    void *got = NULL;
    assert_int_equal(objstore_get(s, "0123", &got, &err), 0);
    assert_string_equal(((thing_t *)got)->name, "kept");
    assert_false(((thing_t *)got)->creating);
    /* the name is still reserved for it after the reopen */
    thing_t *b = thing("other", "kept");
    cri_error_t dup = CRI_ERROR_INIT;
    assert_int_equal(objstore_persist(s, b, true, &dup), -1);
    assert_int_equal(dup.status, EEXIST);
    t_unref(b);
    t_unref(got);
    objstore_free(s);
}

/* the shared record helpers: both kinds rely on these rules */
static void test_record_helpers(void **state)
{
    json_t *o = json_pack("{s:s, s:s}", "a", "1", "b", "2");
    char **pairs = xcalloc(1, sizeof(char *));
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(record_json_to_pairs(o, &pairs, &err), 0); /* the old vector is freed */
    assert_string_equal(record_pairs_get(pairs, "b"), "2");
    assert_null(record_pairs_get(pairs, "c"));
    json_t *bad = json_pack("{s:i}", "a", 1);
    cri_error_t e1 = CRI_ERROR_INIT;
    assert_int_equal(record_json_to_pairs(bad, &pairs, &e1), -1);
    assert_string_equal(e1.msg, "value of `a` is not a string");
    assert_string_equal(record_pairs_get(pairs, "a"), "1"); /* untouched on failure */
    json_t *back = record_pairs_to_json(pairs);
    assert_true(json_equal(back, o));
    strv_free(pairs);
    json_decref(back);
    json_decref(bad);
    json_decref(o);

    json_t *a = json_pack("[s, i]", "x", 2);
    char **v = NULL;
    cri_error_t e2 = CRI_ERROR_INIT;
    assert_int_equal(record_json_to_strv(a, &v, &e2), -1);
    assert_string_equal(e2.msg, "item 1 is not a string");
    assert_null(v);
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_lookup),
        cmocka_unit_test(test_refcounts_and_lists),
        cmocka_unit_test_setup_teardown(test_reservation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_skips_and_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence_across_reopen, setup, teardown),
        cmocka_unit_test(test_record_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
