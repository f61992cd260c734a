/*
 * ctl_json_text.c - the JSON answers of the master's control socket, read
 * and printed for a person: a small parser (the answers are small and
 * trusted to be JSON, but a parse error is reported, not crashed on), the
 * "ok" and "error" members, and the rendering as indented "key: value"
 * lines that status, reload, ws stats and tracks show use without --json.
 *
 * Entry points (talasctl.h): talasctl_reply_ok, talasctl_reply_error,
 * talasctl_print_text. Logs nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/talasctl.h"

/* A parsed JSON value: the answers are small and trusted to be JSON, but
 * a parse error is still reported rather than crashed on. */
struct node {
    char type; /* 'o' object, 'a' array, 's' string, 'n' number or literal */
    char *key; /* member name, in an object */
    char *text;
    struct node *child, *next;
};

struct parser {
    const char *s;
    size_t i, n;
    int depth;
};

static void skip_ws(struct parser *p)
{
    while (p->i < p->n && strchr(" \t\r\n", p->s[p->i]) != NULL)
        p->i++;
}

static void node_free(struct node *nd)
{
    while (nd != NULL) {
        struct node *next = nd->next;
        node_free(nd->child);
        free(nd->key);
        free(nd->text);
        free(nd);
        nd = next;
    }
}

static char *parse_string(struct parser *p)
{
    struct talas_buf b = {0};

    p->i++; /* '"' */
    while (p->i < p->n && p->s[p->i] != '"') {
        char c = p->s[p->i++];
        if (c == '\\' && p->i < p->n) {
            char e = p->s[p->i++];
            c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e;
            if (e == 'u' && p->i + 4 <= p->n) {
                unsigned cp = (unsigned)strtoul(
                    (char[5]){p->s[p->i], p->s[p->i + 1], p->s[p->i + 2], p->s[p->i + 3], '\0'}, NULL, 16);
                p->i += 4;
                /* the master escapes control characters only: keep them visible */
                c = cp < 0x80 && cp >= 0x20 ? (char)cp : '?';
            }
        }
        talas_buf_append(&b, &c, 1);
    }
    if (p->i >= p->n) {
        talas_buf_free(&b);
        return NULL;
    }
    p->i++;
    talas_buf_append(&b, "", 1);
    return b.data;
}

static struct node *parse_value(struct parser *p)
{
    struct node *nd, **tail;
    size_t start;

    skip_ws(p);
    if (p->i >= p->n || ++p->depth > 16)
        return NULL;
    nd = xcalloc(1, sizeof(*nd));
    tail = &nd->child;
    if (p->s[p->i] == '{' || p->s[p->i] == '[') {
        char close = p->s[p->i] == '{' ? '}' : ']';
        nd->type = p->s[p->i] == '{' ? 'o' : 'a';
        p->i++;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == close) {
            p->i++;
            p->depth--;
            return nd;
        }
        for (;;) {
            char *key = NULL;
            struct node *v;
            skip_ws(p);
            if (nd->type == 'o') {
                if (p->i >= p->n || p->s[p->i] != '"' || (key = parse_string(p)) == NULL)
                    goto fail;
                skip_ws(p);
                if (p->i >= p->n || p->s[p->i++] != ':') {
                    free(key);
                    goto fail;
                }
            }
            if ((v = parse_value(p)) == NULL) {
                free(key);
                goto fail;
            }
            v->key = key;
            *tail = v;
            tail = &v->next;
            skip_ws(p);
            if (p->i < p->n && p->s[p->i] == ',') {
                p->i++;
                continue;
            }
            if (p->i < p->n && p->s[p->i] == close) {
                p->i++;
                break;
            }
            goto fail;
        }
    } else if (p->s[p->i] == '"') {
        nd->type = 's';
        if ((nd->text = parse_string(p)) == NULL)
            goto fail;
    } else {
        nd->type = 'n';
        start = p->i;
        while (p->i < p->n && strchr(",}] \t\r\n", p->s[p->i]) == NULL)
            p->i++;
        if (p->i == start)
            goto fail;
        nd->text = strndup(p->s + start, p->i - start);
    }
    p->depth--;
    return nd;

fail:
    node_free(nd);
    return NULL;
}

/* ------------------------------------------------------- reading answers */

/* The top-level member KEY of the answer JSON, or NULL; TYPE_R gets its
 * type ('s' string, 'n' number or literal, 'o', 'a'); the text is copied
 * into BUF. */
static const char *top_member(const char *json, const char *key, char *type_r, char *buf, size_t size)
{
    struct parser p = {json, 0, strlen(json), 0};
    struct node *root = parse_value(&p);
    const char *found = NULL;

    for (struct node *c = root != NULL && root->type == 'o' ? root->child : NULL; c != NULL; c = c->next)
        if (strcmp(c->key, key) == 0 && c->text != NULL) {
            *type_r = c->type;
            snprintf(buf, size, "%s", c->text);
            found = buf;
            break;
        }
    node_free(root);
    return found;
}

int talasctl_reply_ok(const char *json)
{
    char type, buf[16];

    return top_member(json, "ok", &type, buf, sizeof(buf)) != NULL && type == 'n' && strcmp(buf, "true") == 0;
}

const char *talasctl_reply_error(const char *json, char *buf, size_t size)
{
    char type;

    if (top_member(json, "error", &type, buf, size) == NULL || type != 's')
        snprintf(buf, size, "%s", json);
    return buf;
}

static void print_inline(FILE *fp, const struct node *nd, int braces)
{
    if (nd->type == 's' || nd->type == 'n') {
        fputs(nd->text, fp);
        return;
    }
    if (braces || nd->type == 'a')
        fputc(nd->type == 'o' ? '{' : '[', fp);
    for (const struct node *c = nd->child; c != NULL; c = c->next) {
        if (c != nd->child)
            fputs(", ", fp);
        if (c->key != NULL)
            fprintf(fp, "%s: ", c->key);
        print_inline(fp, c, 1);
    }
    if (braces || nd->type == 'a')
        fputc(nd->type == 'o' ? '}' : ']', fp);
}

static int all_objects(const struct node *nd)
{
    for (const struct node *c = nd->child; c != NULL; c = c->next)
        if (c->type != 'o')
            return 0;
    return nd->child != NULL;
}

/* Members of an object, one a line; an object inside is indented below
 * its key, an array of objects is one "- " line per element. */
static void print_block(FILE *fp, const struct node *obj, int indent, int top)
{
    for (const struct node *c = obj->child; c != NULL; c = c->next) {
        if (top && strcmp(c->key, "ok") == 0)
            continue;
        fprintf(fp, "%*s%s:", indent, "", c->key);
        if (c->type == 'o' && c->child != NULL) {
            fputc('\n', fp);
            print_block(fp, c, indent + 2, 0);
        } else if (c->type == 'a' && all_objects(c)) {
            fputc('\n', fp);
            for (const struct node *e = c->child; e != NULL; e = e->next) {
                fprintf(fp, "%*s- ", indent + 2, "");
                print_inline(fp, e, 0);
                fputc('\n', fp);
            }
        } else {
            fputc(' ', fp);
            print_inline(fp, c, 0);
            fputc('\n', fp);
        }
    }
}

int talasctl_print_text(FILE *fp, const char *json, int indent)
{
    struct parser p = {json, 0, strlen(json), 0};
    struct node *root = parse_value(&p);

    if (root == NULL)
        return -1;
    if (root->type == 'o')
        print_block(fp, root, indent, 1);
    else {
        print_inline(fp, root, 0);
        fputc('\n', fp);
    }
    node_free(root);
    return 0;
}
