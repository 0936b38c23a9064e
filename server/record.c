/* Record helpers shared by the object stores. See record.h. */
#include "server/record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

json_t *record_pairs_to_json(char *const *pairs)
{
    json_t *o = json_object();
    for (char *const *p = pairs; p[0] && p[1]; p += 2)
        json_object_set_new(o, p[0], json_string(p[1]));
    return o;
}

json_t *record_strv_to_json(char *const *v)
{
    json_t *a = json_array();
    for (char *const *p = v; *p; p++)
        json_array_append_new(a, json_string(*p));
    return a;
}

int record_json_to_pairs(json_t *o, char ***ret, cri_error_t *err)
{
    if (!json_is_object(o))
        return cri_error_set(err, EINVAL, "not an object");
    char **v = xcalloc(json_object_size(o) * 2 + 1, sizeof(char *));
    size_t n = 0;
    const char *k;
    json_t *val;
    json_object_foreach(o, k, val)
    {
        if (!json_is_string(val)) {
            strv_free(v);
            return cri_error_set(err, EINVAL, "value of `%s` is not a string", k);
        }
        v[n++] = xstrdup(k);
        v[n++] = xstrdup(json_string_value(val));
    }
    strv_free(*ret);
    *ret = v;
    return 0;
}

int record_json_to_strv(json_t *a, char ***ret, cri_error_t *err)
{
    if (!json_is_array(a))
        return cri_error_set(err, EINVAL, "not an array");
    char **v = xcalloc(json_array_size(a) + 1, sizeof(char *));
    size_t i;
    json_t *val;
    json_array_foreach(a, i, val)
    {
        if (!json_is_string(val)) {
            strv_free(v);
            return cri_error_set(err, EINVAL, "item %zu is not a string", i);
        }
        v[i] = xstrdup(json_string_value(val));
    }
    strv_free(*ret);
    *ret = v;
    return 0;
}

int record_json_to_label_maps(json_t *labels, json_t *annotations, char ***ret_labels,
                              char ***ret_annotations, cri_error_t *err)
{
    if (record_json_to_pairs(labels, ret_labels, err) < 0)
        return cri_error_wrap(err, "labels");
    if (record_json_to_pairs(annotations, ret_annotations, err) < 0)
        return cri_error_wrap(err, "annotations");
    return 0;
}

const char *record_pairs_get(char *const *pairs, const char *key)
{
    for (char *const *p = pairs; p[0] && p[1]; p += 2)
        if (strcmp(p[0], key) == 0)
            return p[1];
    return NULL;
}

char *record_dump(json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        abort();
    return text;
}

int record_parse(const char *text, size_t len, const char *what, void *obj, record_fill_fn fill,
                 bool *ret_creating, cri_error_t *err)
{
    json_error_t je;
    json_t *o = json_loadb(text, len, 0, &je);
    if (!o)
        return cri_error_set(err, EINVAL, "%s: line %d column %d: %s", what, je.line, je.column,
                             je.text);
    bool creating = false;
    int rc = json_is_object(o) ? fill(obj, o, &creating, err)
                               : cri_error_set(err, EINVAL, "not a JSON object");
    json_decref(o);
    if (rc < 0)
        return cri_error_wrap(err, "%s", what);
    *ret_creating = creating;
    return 0;
}
