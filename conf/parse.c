/* YAML text -> conf_node_t tree, through libyaml's event parser.
 *
 * Only plain data is accepted: one document, maps with scalar keys, lists and
 * scalars. Anchors, aliases and tags are refused (no alias bombs, no typed
 * values), as are nesting deeper than CONF_MAX_DEPTH and more than
 * CONF_MAX_NODES nodes. Every node keeps its 1-based line for messages. */
#include "conf-internal.h"

#include <errno.h>
#include <string.h>
#include <yaml.h>

#include "common/cleanup.h"
#include "common/util.h"

typedef struct parse_ctx {
    yaml_parser_t parser;
    const char *name;
    const char *data;
    size_t len;
    size_t nodes;
    cri_error_t *err;
} parse_ctx_t;

const char *conf_node_kind_name(conf_node_kind_t kind)
{
    switch (kind) {
    case CONF_NODE_SCALAR:
        return "scalar";
    case CONF_NODE_MAP:
        return "map";
    case CONF_NODE_LIST:
        return "list";
    }
    return "node";
}

void conf_node_free(conf_node_t *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n_items; i++)
        conf_node_free(node->items[i]);
    free(node->items);
    free(node->value);
    free(node);
}

static int mark_line(const yaml_mark_t *mark)
{
    return mark->line >= (size_t)INT32_MAX ? INT32_MAX : (int)mark->line + 1;
}

/* Reader errors carry a byte offset, not a mark: count the lines before it. */
static int offset_line(const parse_ctx_t *ctx, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset && i < ctx->len; i++)
        if (ctx->data[i] == '\n')
            line++;
    return line;
}

static int syntax_error(parse_ctx_t *ctx)
{
    const yaml_parser_t *p = &ctx->parser;
    char problem[CONF_QUOTE_MAX], context[CONF_QUOTE_MAX];

    if (p->error == YAML_MEMORY_ERROR)
        return cri_error_set(ctx->err, ENOMEM, "%s: parse: out of memory", ctx->name);
    int line = p->error == YAML_READER_ERROR ? offset_line(ctx, p->problem_offset)
                                             : mark_line(&p->problem_mark);
    conf_quote(p->problem ? p->problem : "unknown error", problem, sizeof(problem));
    if (p->context)
        return cri_error_set(ctx->err, EINVAL, "%s:%d: syntax error: %s %s", ctx->name, line,
                             problem, conf_quote(p->context, context, sizeof(context)));
    return cri_error_set(ctx->err, EINVAL, "%s:%d: syntax error: %s", ctx->name, line, problem);
}

static int next_event(parse_ctx_t *ctx, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ctx->parser, ev))
        return syntax_error(ctx);
    return 0;
}

/* yaml_event_delete() takes the event's address and accepts a zeroed one. */
#define cleanup_event __attribute__((cleanup(yaml_event_delete)))

/* Refuses what makes YAML more than plain data. */
static int check_plain_data(parse_ctx_t *ctx, const yaml_event_t *ev)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    char q[CONF_QUOTE_MAX];
    int line = mark_line(&ev->start_mark);

    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return cri_error_set(
            ctx->err, EINVAL, "%s:%d: anchors and aliases are not supported (alias \"*%s\")",
            ctx->name, line, conf_quote((const char *)ev->data.alias.anchor, q, sizeof(q)));
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    default:
        return 0;
    }
    if (anchor)
        return cri_error_set(ctx->err, EINVAL,
                             "%s:%d: anchors and aliases are not supported (anchor \"&%s\")",
                             ctx->name, line, conf_quote((const char *)anchor, q, sizeof(q)));
    if (tag)
        return cri_error_set(ctx->err, EINVAL, "%s:%d: tags are not supported (tag \"%s\")",
                             ctx->name, line, conf_quote((const char *)tag, q, sizeof(q)));
    return 0;
}

static conf_node_t *node_new(conf_node_kind_t kind, int line)
{
    conf_node_t *n = xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->line = line;
    return n;
}

static void node_push(conf_node_t *parent, conf_node_t *child, size_t *cap)
{
    if (parent->n_items == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        parent->items = xrealloc(parent->items, *cap * sizeof(conf_node_t *));
    }
    parent->items[parent->n_items++] = child;
}

static bool scalar_is_null(const yaml_event_t *ev)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp((const char *)ev->data.scalar.value, nulls[i]) == 0)
            return true;
    return false;
}

static int parse_node(parse_ctx_t *ctx, yaml_event_t *ev, int depth, conf_node_t **ret);

/* Reads the items of a map or list whose start event was just consumed. */
static int parse_collection(parse_ctx_t *ctx, conf_node_t *node, int depth)
{
    yaml_event_type_t end =
        node->kind == CONF_NODE_MAP ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    size_t cap = 0;

    for (;;) {
        cleanup_event yaml_event_t ev = {0};
        if (next_event(ctx, &ev) < 0)
            return -1;
        if (ev.type == end)
            return 0;
        bool is_key = node->kind == CONF_NODE_MAP && node->n_items % 2 == 0;
        if (is_key && ev.type != YAML_SCALAR_EVENT && ev.type != YAML_ALIAS_EVENT)
            return cri_error_set(ctx->err, EINVAL, "%s:%d: a key must be a scalar, not a %s",
                                 ctx->name, mark_line(&ev.start_mark),
                                 ev.type == YAML_MAPPING_START_EVENT ? "map" : "list");
        conf_node_t *child = NULL;
        if (parse_node(ctx, &ev, depth, &child) < 0)
            return -1;
        node_push(node, child, &cap);
    }
}

/* Builds the node that starts with event ev (consumed by the caller). */
static int parse_node(parse_ctx_t *ctx, yaml_event_t *ev, int depth, conf_node_t **ret)
{
    int line = mark_line(&ev->start_mark);

    if (check_plain_data(ctx, ev) < 0)
        return -1;
    if (++ctx->nodes > CONF_MAX_NODES)
        return cri_error_set(ctx->err, EINVAL, "%s:%d: more than %d nodes", ctx->name, line,
                             CONF_MAX_NODES);

    if (ev->type == YAML_SCALAR_EVENT) {
        const char *value = (const char *)ev->data.scalar.value;
        if (strlen(value) != ev->data.scalar.length)
            return cri_error_set(ctx->err, EINVAL, "%s:%d: a value must not contain NUL", ctx->name,
                                 line);
        conf_node_t *n = node_new(CONF_NODE_SCALAR, line);
        n->null = scalar_is_null(ev);
        n->value = xstrdup(n->null ? "" : value);
        *ret = n;
        return 0;
    }

    if (ev->type != YAML_MAPPING_START_EVENT && ev->type != YAML_SEQUENCE_START_EVENT)
        return cri_error_set(ctx->err, EINVAL, "%s:%d: syntax error: unexpected event %d",
                             ctx->name, line, (int)ev->type);
    if (depth >= CONF_MAX_DEPTH)
        return cri_error_set(ctx->err, EINVAL, "%s:%d: nesting deeper than %d levels", ctx->name,
                             line, CONF_MAX_DEPTH);
    cleanup_conf_node conf_node_t *n =
        node_new(ev->type == YAML_MAPPING_START_EVENT ? CONF_NODE_MAP : CONF_NODE_LIST, line);
    if (parse_collection(ctx, n, depth + 1) < 0)
        return -1;
    *ret = TAKE_PTR(n);
    return 0;
}

/* Expects one event of `type` (stream and document framing). */
static int expect_event(parse_ctx_t *ctx, yaml_event_type_t type)
{
    cleanup_event yaml_event_t ev = {0};
    if (next_event(ctx, &ev) < 0)
        return -1;
    if (ev.type != type)
        return cri_error_set(ctx->err, EINVAL, "%s:%d: syntax error: unexpected content", ctx->name,
                             mark_line(&ev.start_mark));
    return 0;
}

static int parse_stream(parse_ctx_t *ctx, conf_node_t **ret_root)
{
    cleanup_conf_node conf_node_t *root = NULL;

    if (expect_event(ctx, YAML_STREAM_START_EVENT) < 0)
        return -1;
    for (int docs = 0;; docs++) {
        cleanup_event yaml_event_t ev = {0};
        if (next_event(ctx, &ev) < 0)
            return -1;
        if (ev.type == YAML_STREAM_END_EVENT)
            break;
        if (docs > 0)
            return cri_error_set(ctx->err, EINVAL, "%s:%d: more than one YAML document", ctx->name,
                                 mark_line(&ev.start_mark));
        /* Here the parser yields only a document start. */
        cleanup_event yaml_event_t body = {0};
        if (next_event(ctx, &body) < 0)
            return -1;
        if (parse_node(ctx, &body, 0, &root) < 0)
            return -1;
        if (expect_event(ctx, YAML_DOCUMENT_END_EVENT) < 0)
            return -1;
    }
    if (root && root->kind == CONF_NODE_SCALAR && root->null) {
        conf_node_free(root);
        root = NULL;
    }
    if (root && root->kind != CONF_NODE_MAP)
        return cri_error_set(ctx->err, EINVAL, "%s:%d: the top level must be a map, not a %s",
                             ctx->name, root->line, conf_node_kind_name(root->kind));
    *ret_root = TAKE_PTR(root);
    return 0;
}

int conf_parse(const char *name, const char *data, size_t len, conf_node_t **ret_root,
               cri_error_t *err)
{
    parse_ctx_t ctx = {.name = name, .data = data, .len = len, .err = err};

    if (!yaml_parser_initialize(&ctx.parser))
        return cri_error_set(err, ENOMEM, "%s: parse: out of memory", name);
    yaml_parser_set_input_string(&ctx.parser, (const unsigned char *)(data ? data : ""),
                                 data ? len : 0);
    int r = parse_stream(&ctx, ret_root);
    yaml_parser_delete(&ctx.parser);
    return r;
}
