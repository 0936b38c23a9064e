/* Helpers shared by the JSON records of the object stores (server/sandbox/
 * record.c, server/container/record.c): string-pair maps and string vectors
 * to and from JSON, and the text form of a record. */
#ifndef CRICKET_SERVER_RECORD_H
#define CRICKET_SERVER_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/error.h"

/* key, value, key, value, ..., NULL -> {"key": "value", ...} (new ref). */
json_t *record_pairs_to_json(char *const *pairs);
/* NULL-terminated strings -> ["a", ...] (new ref). */
json_t *record_strv_to_json(char *const *v);

/* An object of strings -> key, value, ..., NULL. On success the old *ret is
 * freed (strv_free) and replaced; on failure *ret is untouched. EINVAL
 * ("not an object", "value of `k` is not a string"). */
int record_json_to_pairs(json_t *o, char ***ret, cri_error_t *err);
/* An array of strings -> NULL-terminated vector; the same ownership rules.
 * EINVAL ("not an array", "item N is not a string"). */
int record_json_to_strv(json_t *a, char ***ret, cri_error_t *err);

/* The labels and annotations objects of a record -> two pair vectors (the
 * rules of record_json_to_pairs(); messages start with the map's name). */
int record_json_to_label_maps(json_t *labels, json_t *annotations, char ***ret_labels,
                              char ***ret_annotations, cri_error_t *err);

/* The compact text of o (malloc'd); takes o's reference. Aborts on OOM
 * only: every string of a record came from valid UTF-8 input. */
char *record_dump(json_t *o);

/* Fills obj from a parsed record object; *ret_creating gets the record's
 * creating mark. EINVAL naming what is wrong. */
typedef int (*record_fill_fn)(void *obj, json_t *o, bool *ret_creating, cri_error_t *err);

/* Parses text as a JSON object and fills obj with fill. Messages start with
 * `what` ("<what>: line L column C: <reason>", "<what>: labels: ...").
 * *ret_creating is written only on success. EINVAL. */
int record_parse(const char *text, size_t len, const char *what, void *obj, record_fill_fn fill,
                 bool *ret_creating, cri_error_t *err);

/* Defines p_record_parse(text, len, T **ret, bool *ret_creating, err) for
 * object type T: a new object from p_new() filled by fill (a
 * record_fill_fn), *ret getting its one reference; messages start with
 * WHAT. Written once here so every kind parses its records alike. */
// NOLINTBEGIN(bugprone-macro-parentheses): T is a type name
#define RECORD_DEFINE_PARSE(p, T, WHAT, fill)                                       \
    int p##_record_parse(const char *text, size_t len, T **ret, bool *ret_creating, \
                         cri_error_t *err)                                          \
    {                                                                               \
        T *obj = p##_new();                                                         \
        if (record_parse(text, len, WHAT, obj, fill, ret_creating, err) < 0) {      \
            p##_unref(obj);                                                         \
            return -1;                                                              \
        }                                                                           \
        *ret = obj;                                                                 \
        return 0;                                                                   \
    }
// NOLINTEND(bugprone-macro-parentheses)

/* Value of `key` in key, value, ..., NULL pairs, or NULL. */
const char *record_pairs_get(char *const *pairs, const char *key);

#endif
