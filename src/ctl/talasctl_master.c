/*
 * talasctl_master.c - talasctl's commands that talk to the running master
 * on its control socket (control.h): reload, stop, ws stats, broadcast,
 * and the master's part of status; plus the rendering of the master's JSON
 * answers as text.
 *
 * Entry points (talasctl.h): talasctl_request, talasctl_reply_ok,
 * talasctl_reply_error, talasctl_print_text, talasctl_cmd_reload,
 * talasctl_cmd_stop, talasctl_cmd_ws_stats, talasctl_cmd_broadcast.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/control.h"
#include "ctl/talasctl.h"

/* How long the master may take to answer a request (a reload answers when
 * its workers are ready, within TALAS_READY_TIMEOUT_MS of master.h). */
#define ANSWER_TIMEOUT_MS 30000

int talasctl_json;

static uint64_t now_ms(void)
{
    return talas_now_ms();
}

/* Reads from FD into B until a newline (LINE) or EOF, for at most
 * TIMEOUT_MS. Returns 1 when the wait ended as asked, 0 on timeout, -1 on
 * error. */
static int read_until(int fd, struct talas_buf *b, int line, unsigned timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;

    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        uint64_t now = now_ms();
        ssize_t n;
        int rc;

        if (line && memchr(b->data != NULL ? b->data : "", '\n', b->len) != NULL)
            return 1;
        if (now >= deadline)
            return 0;
        rc = poll(&p, 1, (int)(deadline - now));
        if (rc == -1 && errno == EINTR)
            continue;
        if (rc <= 0)
            return rc;
        talas_buf_reserve(b, 4096);
        n = read(fd, b->data + b->len, b->cap - b->len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return errno == ECONNRESET && !line ? 1 : -1;
        if (n == 0)
            return line ? -1 : 1;
        if (!line)
            continue; /* nothing more is expected: only the EOF counts */
        b->len += (size_t)n;
    }
}

int talasctl_request(const struct talas_config *conf, const char *request, struct talas_buf *reply,
                     unsigned wait_exit_ms)
{
    const char *path = conf->control_socket;
    struct talas_buf req = {0};
    char *nl;
    int fd, rc;

    if ((fd = talas_control_connect(path)) == -1) {
        if (errno == EACCES || errno == EPERM) {
            fprintf(stderr,
                    "talasctl: connect() to %s failed: %s (the control socket is mode 0660: run talasctl as "
                    "its owner or as a member of control.group)\n",
                    path, strerror(errno));
            return TALASCTL_DENIED;
        }
        fprintf(stderr, "talasctl: the master is not running (connect() to %s failed: %s)\n", path,
                strerror(errno));
        return TALASCTL_NOT_RUNNING;
    }
    talas_buf_printf(&req, "%s\n", request);
    if (write(fd, req.data, req.len) != (ssize_t)req.len) {
        fprintf(stderr, "talasctl: write() to %s failed: %s\n", path, strerror(errno));
        talas_buf_free(&req);
        close(fd);
        return TALASCTL_FAILURE;
    }
    talas_buf_free(&req);
    reply->len = 0;
    rc = read_until(fd, reply, 1, ANSWER_TIMEOUT_MS);
    if (rc != 1) {
        fprintf(stderr, "talasctl: %s from the master on %s\n", rc == 0 ? "no answer" : "no whole answer",
                path);
        close(fd);
        return TALASCTL_FAILURE;
    }
    nl = memchr(reply->data, '\n', reply->len);
    *nl = '\0';
    reply->len = (size_t)(nl - reply->data);
    if (wait_exit_ms > 0 && talasctl_reply_ok(reply->data)) {
        struct talas_buf rest = {0};
        rc = read_until(fd, &rest, 0, wait_exit_ms);
        talas_buf_free(&rest);
        if (rc != 1) {
            fprintf(stderr, "talasctl: the master did not exit within %u ms\n", wait_exit_ms);
            close(fd);
            return TALASCTL_FAILURE;
        }
    }
    close(fd);
    return TALASCTL_OK;
}

/* ------------------------------------------------------ JSON as text */

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

/* ------------------------------------------------------------ commands */

/* Prints an answer as asked (--json: as it came) and turns it into an
 * exit code. */
static int finish(const struct talas_buf *reply, int print_ok)
{
    char error[512];

    if (!talasctl_reply_ok(reply->data)) {
        if (talasctl_json)
            printf("%s\n", reply->data);
        fprintf(stderr, "talasctl: %s\n", talasctl_reply_error(reply->data, error, sizeof(error)));
        return TALASCTL_FAILURE;
    }
    if (talasctl_json)
        printf("%s\n", reply->data);
    else if (print_ok)
        talasctl_print_text(stdout, reply->data, 0);
    return TALASCTL_OK;
}

int talasctl_cmd_reload(const struct talas_config *conf)
{
    struct talas_buf reply = {0};
    int rc = talasctl_request(conf, "reload", &reply, 0);

    if (rc == TALASCTL_OK) {
        rc = finish(&reply, 0);
        if (rc == TALASCTL_OK && !talasctl_json) {
            printf("reloaded\n");
            talasctl_print_text(stdout, reply.data, 2);
        }
    }
    talas_buf_free(&reply);
    return rc;
}

int talasctl_cmd_stop(const struct talas_config *conf)
{
    struct talas_buf reply = {0};
    /* the master waits shutdown_timeout for its workers, then kills them */
    unsigned wait = (unsigned)conf->shutdown_timeout_ms + 15000;
    int rc = talasctl_request(conf, "stop", &reply, wait);

    if (rc == TALASCTL_OK) {
        rc = finish(&reply, 0);
        if (rc == TALASCTL_OK && !talasctl_json)
            printf("stopped\n");
    }
    talas_buf_free(&reply);
    return rc;
}

int talasctl_cmd_ws_stats(const struct talas_config *conf)
{
    struct talas_buf reply = {0};
    int rc = talasctl_request(conf, "ws-stats", &reply, 0);

    if (rc == TALASCTL_OK)
        rc = finish(&reply, 1);
    talas_buf_free(&reply);
    return rc;
}

int talasctl_cmd_broadcast(const struct talas_config *conf, const char *message, const char *level)
{
    struct talas_buf req = {0}, reply = {0};
    int rc;

    if (*message == '\0' || strpbrk(message, "\r\n") != NULL ||
        strlen(message) > TALAS_CONTROL_MAX_REQUEST - 64) {
        fprintf(stderr, "talasctl: the message must be one line of at most %d bytes\n",
                TALAS_CONTROL_MAX_REQUEST - 64);
        return TALASCTL_USAGE;
    }
    talas_buf_printf(&req, "broadcast %s %s", level, message);
    talas_buf_append(&req, "", 1);
    rc = talasctl_request(conf, req.data, &reply, 0);
    if (rc == TALASCTL_OK)
        rc = finish(&reply, 0);
    talas_buf_free(&req);
    talas_buf_free(&reply);
    return rc;
}
