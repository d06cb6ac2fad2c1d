/* SPDX-License-Identifier: MIT */
/*
 * The `portico` CLI's commands (see commands.h and docs/cli.md). Each command checks its
 * whole command line before it talks to the edge, so a usage error (exit 2) never depends on
 * whether the edge is reachable. Answers are printed from the API's JSON: lists as aligned
 * tables, single records as "key: value" lines using the API's own key names (the names
 * `portico app set` takes), changes as a one-line confirmation. With --json the body is
 * printed exactly as received. Every string that came from the edge goes through
 * ptc_table_sanitize() before it reaches the terminal.
 */
#include "edge/cli/commands.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/keys.h"
#include "edge/cli/table.h"

#define PATH_CAP 1024
/** The admin API refuses bodies above 1 MiB; one PEM file never needs more than this. */
#define MAX_PEM_FILE (512 * 1024)

/* ---- usage texts ---- */

static const char USAGE_GROUP[] = "usage: portico group list\n"
                                  "       portico group add NAME\n"
                                  "       portico group show NAME\n"
                                  "       portico group delete NAME\n";

static const char USAGE_TOKEN[] =
    "usage: portico token create --group GROUP [--expires DURATION] [--uses N]\n"
    "       portico token list\n"
    "       portico token delete ID\n"
    "DURATION is a number and a unit: 30m, 1h, 7d (default 1d, at most 365d); N defaults to "
    "1.\n";

static const char USAGE_CONNECTOR[] = "usage: portico connector list\n"
                                      "       portico connector show ID\n"
                                      "       portico connector move ID --group GROUP\n"
                                      "       portico connector delete ID\n";

static const char USAGE_APP[] =
    "usage: portico app add NAME --internal-url URL [--external-url URL] [--group GROUP]\n"
    "                       [--pre-auth oidc|passthrough] [--set KEY=VALUE]...\n"
    "       portico app list\n"
    "       portico app show NAME\n"
    "       portico app set NAME KEY=VALUE...\n"
    "       portico app delete NAME\n"
    "       portico app test NAME\n"
    "KEY is a setting (maintenance_mode, backend_timeout, home_page, ...; a dot reaches into an\n"
    "object: sso_headers.email=X-Email). VALUE is read as JSON when it parses (true, 42,\n"
    "[\"a\",\"b\"], {...}, \"text\"), else as a string.\n"
    "`app test` checks the app's settings, certificate and connectors, and has each live\n"
    "connector of its group reach the internal URL; it exits 0 when every check passed.\n";

static const char USAGE_CERT[] = "usage: portico cert add --cert FILE --key FILE\n"
                                 "       portico cert list\n"
                                 "       portico cert delete ID\n";

static const char USAGE_STATUS[] = "usage: portico status\n";

void ptc_commands_usage(FILE *out)
{
    fputs("usage: portico [--socket PATH | --url URL --token-file FILE] [--json] RESOURCE VERB "
          "[ARGS]\n"
          "\n"
          "Manage a running portico-edge through its admin API.\n"
          "\n"
          "Resources and verbs:\n"
          "  group      list | add NAME | show NAME | delete NAME\n"
          "  token      create --group GROUP [--expires 1h] [--uses N] | list | delete ID\n"
          "  connector  list | show ID | move ID --group GROUP | delete ID\n"
          "  app        add NAME --internal-url URL [--external-url URL] [--group GROUP]\n"
          "                 [--pre-auth oidc|passthrough] [--set KEY=VALUE]...\n"
          "             list | show NAME | set NAME KEY=VALUE... | delete NAME | test NAME\n"
          "  cert       add --cert FILE --key FILE | list | delete ID\n"
          "  status\n"
          "\n"
          "Options:\n"
          "  --socket PATH      the edge's admin socket (default: $PORTICO_ADMIN_SOCKET, else\n"
          "                     " PTC_CLIENT_DEFAULT_SOCKET ")\n"
          "  --url URL          the admin API on loopback TCP instead (http://127.0.0.1:9443)\n"
          "  --token-file FILE  the file holding the bearer token for --url\n"
          "  --json             print the API's JSON answer as it is\n"
          "  -h, --help         this text; `portico RESOURCE --help` for one resource\n"
          "  --version          print the version\n"
          "\n"
          "Exit status: 0 done, 1 the edge refused or could not be reached, 2 usage error.\n",
          out);
}

void ptc_commands_short_usage(FILE *out)
{
    fputs("usage: portico [--socket PATH | --url URL --token-file FILE] [--json] RESOURCE VERB "
          "[ARGS]\n"
          "resources: group, token, connector, app, cert, status (`portico --help` for more)\n",
          out);
}

static int usage_error(ptc_cli_t *cli, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int usage_error(ptc_cli_t *cli, const char *usage, const char *fmt, ...)
{
    va_list ap;
    fputs("portico: ", cli->err);
    va_start(ap, fmt);
    vfprintf(cli->err, fmt, ap);
    va_end(ap);
    fputc('\n', cli->err);
    fputs(usage, cli->err);
    return PTC_CLI_EXIT_USAGE;
}

static int fail(ptc_cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(ptc_cli_t *cli, const char *fmt, ...)
{
    va_list ap;
    fputs("portico: ", cli->err);
    va_start(ap, fmt);
    vfprintf(cli->err, fmt, ap);
    va_end(ap);
    fputc('\n', cli->err);
    return PTC_CLI_EXIT_FAIL;
}

/* ---- argument parsing ---- */

/** One option of a verb: a single value, or (list != NULL) a repeatable one. */
typedef struct optdef {
    const char *name;
    const char **value;
    const char **list; /* room for argc entries */
    size_t *list_cnt;
} optdef_t;

/** What a verb accepts: its options and how many positional arguments. */
typedef struct argspec {
    const optdef_t *opts;
    size_t opt_cnt;
    const char **pos; /* room for max_pos entries */
    size_t min_pos;
    size_t max_pos;
    const char *pos_names; /* for "needs NAME" messages */
} argspec_t;

/* Parses argv[0..argc) (the arguments after the verb). Returns 0 or a usage error status. */
static int parse_args(ptc_cli_t *cli, const char *usage, const char *cmd, int argc, char **argv,
                      const argspec_t *spec, size_t *npos)
{
    *npos = 0;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            const char *eq = strchr(a, '=');
            size_t nlen = eq != NULL ? (size_t)(eq - a) : strlen(a);
            const optdef_t *o = NULL;
            for (size_t k = 0; k < spec->opt_cnt; k++) {
                if (strlen(spec->opts[k].name) == nlen &&
                    strncmp(spec->opts[k].name, a, nlen) == 0) {
                    o = &spec->opts[k];
                    break;
                }
            }
            if (o == NULL) {
                return usage_error(cli, usage, "%s: unknown option %.*s", cmd, (int)nlen, a);
            }
            const char *v;
            if (eq != NULL) {
                v = eq + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                return usage_error(cli, usage, "%s: %s needs a value", cmd, o->name);
            }
            if (o->list != NULL) {
                o->list[(*o->list_cnt)++] = v;
            } else {
                *o->value = v;
            }
            continue;
        }
        if (*npos == spec->max_pos) {
            return usage_error(cli, usage, "%s: unexpected argument \"%s\"", cmd, a);
        }
        spec->pos[(*npos)++] = a;
    }
    if (*npos < spec->min_pos) {
        return usage_error(cli, usage, "%s needs %s", cmd, spec->pos_names);
    }
    return 0;
}

/* A verb without options and exactly `n` positional arguments (0 or 1). */
static int parse_plain(ptc_cli_t *cli, const char *usage, const char *cmd, int argc, char **argv,
                       const char **arg, size_t n, const char *pos_names)
{
    const char *pos[1] = {NULL};
    argspec_t spec = {.pos = pos, .min_pos = n, .max_pos = n, .pos_names = pos_names};
    size_t npos;
    int rc = parse_args(cli, usage, cmd, argc, argv, &spec, &npos);
    if (rc == 0 && arg != NULL) {
        *arg = pos[0];
    }
    return rc;
}

/* Parses "30m", "1h", "7d", "90s" into seconds (> 0). */
static bool parse_duration(const char *s, uint64_t *seconds)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9') {
        return false;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    uint64_t mul;
    if (strcmp(p, "s") == 0) {
        mul = 1;
    } else if (strcmp(p, "m") == 0) {
        mul = 60;
    } else if (strcmp(p, "h") == 0) {
        mul = 3600;
    } else if (strcmp(p, "d") == 0) {
        mul = 86400;
    } else {
        return false;
    }
    if (v == 0 || v > UINT64_MAX / mul) {
        return false;
    }
    *seconds = v * mul;
    return true;
}

static bool parse_count(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0') {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > max) {
            return false;
        }
    }
    *out = v;
    return true;
}

/*
 * Adds "KEY=VALUE" to obj: VALUE as JSON when it parses, else as a string; dots in KEY
 * reach into nested objects ("sso_headers.email=X-Email"). Returns false with a message.
 */
static bool add_setting(json_t *obj, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg) {
        snprintf(err, errlen, "expected KEY=VALUE, got \"%s\"", arg);
        return false;
    }
    json_error_t jerr;
    json_t *value = json_loads(eq + 1, JSON_DECODE_ANY, &jerr);
    if (value == NULL) {
        value = json_string(eq + 1);
        if (value == NULL) {
            snprintf(err, errlen, "%.*s: the value is not valid UTF-8", (int)(eq - arg), arg);
            return false;
        }
    }
    json_t *cur = obj;
    const char *k = arg;
    for (;;) {
        const char *dot = memchr(k, '.', (size_t)(eq - k));
        size_t klen = dot != NULL ? (size_t)(dot - k) : (size_t)(eq - k);
        if (klen == 0) {
            snprintf(err, errlen, "\"%.*s\": empty key", (int)(eq - arg), arg);
            json_decref(value);
            return false;
        }
        char key[256];
        if (klen >= sizeof(key)) {
            snprintf(err, errlen, "\"%.*s\": key too long", (int)(eq - arg), arg);
            json_decref(value);
            return false;
        }
        memcpy(key, k, klen);
        key[klen] = '\0';
        if (dot == NULL) {
            json_object_set_new(cur, key, value);
            return true;
        }
        json_t *next = json_object_get(cur, key);
        if (next == NULL) {
            next = json_object();
            json_object_set_new(cur, key, next);
        } else if (!json_is_object(next)) {
            snprintf(err, errlen, "\"%.*s\": %s is already set to a value that is not an object",
                     (int)(eq - arg), arg, key);
            json_decref(value);
            return false;
        }
        cur = next;
        k = dot + 1;
    }
}

/* Builds "/v1/<collection>[/<id>]" with the id percent-encoded. */
static bool make_path(char *out, const char *collection, const char *id)
{
    int n = snprintf(out, PATH_CAP, "/v1/%s%s", collection, id != NULL ? "/" : "");
    if (n < 0 || n >= PATH_CAP) {
        return false;
    }
    return id == NULL || ptc_client_path_append(out, PATH_CAP, id) == 0;
}

/* ---- talking to the edge ---- */

/*
 * Makes the request. On a 2xx answer returns 0, and with --json prints the body as received.
 * Otherwise prints the API's message (or the transport failure) and returns EXIT_FAIL.
 */
static int call(ptc_cli_t *cli, const char *method, const char *path, json_t *body,
                ptc_client_response_t *resp)
{
    int rc = ptc_client_request(cli->client, method, path, body, resp);
    if (rc != 0) {
        return fail(cli, "%s", ptc_client_error(cli->client));
    }
    if (resp->status < 200 || resp->status > 299) {
        const char *msg = json_string_value(json_object_get(resp->json, "message"));
        if (msg == NULL) {
            return fail(cli, "the edge answered HTTP %d", resp->status);
        }
        char *safe = ptc_table_sanitize(msg);
        fail(cli, "%s", safe);
        free(safe);
        return PTC_CLI_EXIT_FAIL;
    }
    if (cli->json && resp->raw_len > 0) {
        fwrite(resp->raw, 1, resp->raw_len, cli->out);
        if (resp->raw[resp->raw_len - 1] != '\n') {
            fputc('\n', cli->out);
        }
    }
    return 0;
}

/* ---- formatting values ---- */

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* A scalar, an array of scalars (comma-joined) or an object (compact JSON), as text for a
 * cell; NULL for absent or null values (shown as "-"). The caller frees it. */
static char *value_text(const json_t *v)
{
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return ptc_xstrdup(json_string_value(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return ptc_xstrdup(buf);
    case JSON_REAL:
        snprintf(buf, sizeof(buf), "%g", json_real_value(v));
        return ptc_xstrdup(buf);
    case JSON_TRUE:
        return ptc_xstrdup("true");
    case JSON_FALSE:
        return ptc_xstrdup("false");
    case JSON_NULL:
        return NULL;
    case JSON_ARRAY: {
        bool scalars = true;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (json_is_object(e) || json_is_array(e)) {
                scalars = false;
            }
        }
        if (scalars) {
            if (json_array_size(v) == 0) {
                return NULL;
            }
            size_t len = 0;
            char **parts = ptc_xcalloc(json_array_size(v), sizeof(char *));
            json_array_foreach(v, i, e)
            {
                parts[i] = value_text(e);
                len += (parts[i] != NULL ? strlen(parts[i]) : 1) + 2;
            }
            char *out = ptc_xmalloc(len + 1);
            out[0] = '\0';
            json_array_foreach(v, i, e)
            {
                if (i > 0) {
                    strcat(out, ", ");
                }
                strcat(out, parts[i] != NULL ? parts[i] : "-");
                free(parts[i]);
            }
            free(parts);
            return out;
        }
    }
        /* An array of objects is shown as JSON. */
        __attribute__((fallthrough));
    case JSON_OBJECT: {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        char *out = ptc_xstrdup(s != NULL ? s : "?");
        free(s);
        return out;
    }
    }
    return NULL;
}

static char *field_text(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return v != NULL ? value_text(v) : NULL;
}

/* Parses the API's RFC 3339 times ("2024-05-01T12:00:00.000Z"); false when absent/other. */
static bool parse_time(const char *s, time_t *out)
{
    if (s == NULL) {
        return false;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n == 0) {
        return false;
    }
    const char *rest = s + n;
    if (*rest == '.') {
        rest++;
        while (*rest >= '0' && *rest <= '9') {
            rest++;
        }
    }
    if (strcmp(rest, "Z") != 0) {
        return false;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = timegm(&tm);
    return *out != (time_t)-1;
}

/* "2024-05-01 12:00:00Z" (UTC, to the second) or the text as it is when it does not parse. */
static char *time_text(const json_t *obj, const char *key)
{
    const char *s = jstr(obj, key);
    time_t t;
    if (!parse_time(s, &t)) {
        return field_text(obj, key);
    }
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
    return ptc_xstrdup(buf);
}

/* "12s ago", "5m ago", "3h ago", "2d ago" (or "-" when absent). */
static char *age_text(const json_t *obj, const char *key, time_t now)
{
    const char *s = jstr(obj, key);
    time_t t;
    if (!parse_time(s, &t)) {
        return field_text(obj, key);
    }
    long long d = (long long)(now - t);
    if (d < 0) {
        d = 0;
    }
    char buf[32];
    if (d < 120) {
        snprintf(buf, sizeof(buf), "%llds ago", d);
    } else if (d < 2 * 3600) {
        snprintf(buf, sizeof(buf), "%lldm ago", d / 60);
    } else if (d < 2 * 86400) {
        snprintf(buf, sizeof(buf), "%lldh ago", d / 3600);
    } else {
        snprintf(buf, sizeof(buf), "%lldd ago", d / 86400);
    }
    return ptc_xstrdup(buf);
}

/* ---- printing ---- */

typedef enum colkind {
    COL_TEXT,
    COL_TIME,
    COL_AGE,
    COL_USES, /* "uses_left/max_uses" */
} colkind_t;

typedef struct column {
    const char *title;
    const char *key;
    colkind_t kind;
} column_t;

/* Prints the array `items` as a table with the given columns. */
static void print_list(ptc_cli_t *cli, const json_t *items, const column_t *cols, size_t ncols)
{
    const char *titles[16];
    for (size_t c = 0; c < ncols; c++) {
        titles[c] = cols[c].title;
    }
    ptc_table_t *t = ptc_table_new(titles, ncols);
    time_t now = time(NULL);
    size_t i;
    const json_t *item;
    json_array_foreach(items, i, item)
    {
        char *cells[16];
        for (size_t c = 0; c < ncols; c++) {
            switch (cols[c].kind) {
            case COL_TEXT:
                cells[c] = field_text(item, cols[c].key);
                break;
            case COL_TIME:
                cells[c] = time_text(item, cols[c].key);
                break;
            case COL_AGE:
                cells[c] = age_text(item, cols[c].key, now);
                break;
            case COL_USES: {
                char buf[64];
                json_t *left = json_object_get(item, "uses_left");
                json_t *max = json_object_get(item, "max_uses");
                snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
                         json_integer_value(left), json_integer_value(max));
                cells[c] = ptc_xstrdup(buf);
                break;
            }
            }
        }
        ptc_table_add_row(t, (const char *const *)cells);
        for (size_t c = 0; c < ncols; c++) {
            free(cells[c]);
        }
    }
    ptc_table_print(t, cli->out);
    ptc_table_free(t);
}

/* Adds an object's members as "key:  value" rows, in the API's order, skipping `skip`. */
static void add_object_rows(ptc_table_t *t, const json_t *obj, const char *skip)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (skip != NULL && strcmp(key, skip) == 0) {
            continue;
        }
        char label[300];
        snprintf(label, sizeof(label), "%s:", key);
        char *text = value_text(v);
        const char *cells[2] = {label, text};
        ptc_table_add_row(t, cells);
        free(text);
    }
}

/* Prints an object's members as aligned "key:  value" lines. */
static void print_object(ptc_cli_t *cli, const json_t *obj)
{
    ptc_table_t *t = ptc_table_new(NULL, 2);
    add_object_rows(t, obj, NULL);
    ptc_table_print(t, cli->out);
    ptc_table_free(t);
}

/* A value for say(): never NULL. */
static const char *nz(const char *s)
{
    return s != NULL ? s : "-";
}

/* Prints the NULL-terminated list of strings, each sanitized, then a newline. */
static void say(ptc_cli_t *cli, ...) __attribute__((sentinel));

static void say(ptc_cli_t *cli, ...)
{
    va_list ap;
    va_start(ap, cli);
    const char *piece;
    while ((piece = va_arg(ap, const char *)) != NULL) {
        char *safe = ptc_table_sanitize(piece);
        fputs(safe, cli->out);
        free(safe);
    }
    va_end(ap);
    fputc('\n', cli->out);
}

/* ---- group ---- */

static int cmd_group(ptc_cli_t *cli, int argc, char **argv)
{
    const char *verb = argv[0];
    const char *name = NULL;
    char path[PATH_CAP];
    ptc_client_response_t resp = {0};
    int rc;
    if (strcmp(verb, "list") == 0) {
        rc = parse_plain(cli, USAGE_GROUP, "group list", argc - 1, argv + 1, NULL, 0, "");
        if (rc == 0 && (rc = call(cli, "GET", "/v1/groups", NULL, &resp)) == 0 && !cli->json) {
            static const column_t cols[] = {{"NAME", "name", COL_TEXT},
                                            {"CONNECTORS", "connectors", COL_TEXT},
                                            {"APPS", "apps", COL_TEXT},
                                            {"CREATED", "created_at", COL_TIME}};
            print_list(cli, json_object_get(resp.json, "groups"), cols, 4);
        }
    } else if (strcmp(verb, "add") == 0 || strcmp(verb, "show") == 0 ||
               strcmp(verb, "delete") == 0) {
        char cmd[32];
        snprintf(cmd, sizeof(cmd), "group %s", verb);
        rc = parse_plain(cli, USAGE_GROUP, cmd, argc - 1, argv + 1, &name, 1, "NAME");
        if (rc != 0) {
            return rc;
        }
        if (strcmp(verb, "add") == 0) {
            json_t *body = json_pack("{s:s}", "name", name);
            if (body == NULL) {
                return usage_error(cli, USAGE_GROUP, "group add: NAME is not valid UTF-8");
            }
            rc = call(cli, "POST", "/v1/groups", body, &resp);
            json_decref(body);
            if (rc == 0 && !cli->json) {
                say(cli, "added group ", nz(jstr(resp.json, "name")), NULL);
            }
        } else if (!make_path(path, "groups", name)) {
            rc = usage_error(cli, USAGE_GROUP, "%s: NAME is too long", cmd);
        } else if (strcmp(verb, "show") == 0) {
            rc = call(cli, "GET", path, NULL, &resp);
            if (rc == 0 && !cli->json) {
                print_object(cli, resp.json);
            }
        } else {
            rc = call(cli, "DELETE", path, NULL, &resp);
            if (rc == 0 && !cli->json) {
                say(cli, "deleted group ", name, NULL);
            }
        }
    } else {
        rc = usage_error(cli, USAGE_GROUP, "group: unknown verb \"%s\"", verb);
    }
    ptc_client_response_dispose(&resp);
    return rc;
}

/* ---- token ---- */

static int token_create(ptc_cli_t *cli, int argc, char **argv)
{
    const char *group = NULL;
    const char *expires = NULL;
    const char *uses = NULL;
    const optdef_t opts[] = {
        {.name = "--group", .value = &group},
        {.name = "--expires", .value = &expires},
        {.name = "--uses", .value = &uses},
    };
    argspec_t spec = {.opts = opts, .opt_cnt = 3};
    size_t npos;
    int rc = parse_args(cli, USAGE_TOKEN, "token create", argc, argv, &spec, &npos);
    if (rc != 0) {
        return rc;
    }
    if (group == NULL) {
        return usage_error(cli, USAGE_TOKEN, "token create needs --group GROUP");
    }
    uint64_t seconds = 0;
    if (expires != NULL && !parse_duration(expires, &seconds)) {
        return usage_error(cli, USAGE_TOKEN,
                           "token create: --expires: expected a duration such as 30m, 1h or 7d, "
                           "got \"%s\"",
                           expires);
    }
    uint64_t max_uses = 0;
    if (uses != NULL && (!parse_count(uses, UINT32_MAX, &max_uses) || max_uses == 0)) {
        return usage_error(cli, USAGE_TOKEN,
                           "token create: --uses: expected a positive integer, got \"%s\"", uses);
    }
    json_t *body = json_pack("{s:s}", "group", group);
    if (body == NULL) {
        return usage_error(cli, USAGE_TOKEN, "token create: GROUP is not valid UTF-8");
    }
    if (expires != NULL) {
        json_object_set_new(body, "expires_in", json_string(expires));
    }
    if (uses != NULL) {
        json_object_set_new(body, "max_uses", json_integer((json_int_t)max_uses));
    }
    ptc_client_response_t resp = {0};
    rc = call(cli, "POST", "/v1/tokens", body, &resp);
    json_decref(body);
    if (rc == 0 && !cli->json) {
        ptc_table_t *t = ptc_table_new(NULL, 2);
        static const char *const keys[][2] = {{"token:", "token"},
                                              {"id:", "id"},
                                              {"group:", "group"},
                                              {"expires_at:", "expires_at"},
                                              {"max_uses:", "max_uses"}};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            char *v = field_text(resp.json, keys[i][1]);
            const char *cells[2] = {keys[i][0], v};
            ptc_table_add_row(t, cells);
            free(v);
        }
        ptc_table_print(t, cli->out);
        ptc_table_free(t);
        fputs("\nThe token is shown only now. Register a connector with:\n", cli->out);
        say(cli, "  portico-connector register --edge https://EDGE_HOST --token ",
            nz(jstr(resp.json, "token")), NULL);
    }
    if (resp.raw != NULL) {
        ptc_keys_wipe(resp.raw, resp.raw_len);
    }
    ptc_client_response_dispose(&resp);
    return rc;
}

static int cmd_token(ptc_cli_t *cli, int argc, char **argv)
{
    const char *verb = argv[0];
    ptc_client_response_t resp = {0};
    int rc;
    if (strcmp(verb, "create") == 0) {
        return token_create(cli, argc - 1, argv + 1);
    } else if (strcmp(verb, "list") == 0) {
        rc = parse_plain(cli, USAGE_TOKEN, "token list", argc - 1, argv + 1, NULL, 0, "");
        if (rc == 0 && (rc = call(cli, "GET", "/v1/tokens", NULL, &resp)) == 0 && !cli->json) {
            static const column_t cols[] = {{"ID", "id", COL_TEXT},
                                            {"GROUP", "group", COL_TEXT},
                                            {"STATE", "state", COL_TEXT},
                                            {"USES LEFT", NULL, COL_USES},
                                            {"EXPIRES", "expires_at", COL_TIME},
                                            {"CREATED", "created_at", COL_TIME}};
            print_list(cli, json_object_get(resp.json, "tokens"), cols, 6);
        }
    } else if (strcmp(verb, "delete") == 0) {
        const char *id = NULL;
        char path[PATH_CAP];
        rc = parse_plain(cli, USAGE_TOKEN, "token delete", argc - 1, argv + 1, &id, 1, "ID");
        if (rc == 0 && !make_path(path, "tokens", id)) {
            rc = usage_error(cli, USAGE_TOKEN, "token delete: ID is too long");
        }
        if (rc == 0 && (rc = call(cli, "DELETE", path, NULL, &resp)) == 0 && !cli->json) {
            say(cli, "revoked token ", id, NULL);
        }
    } else {
        rc = usage_error(cli, USAGE_TOKEN, "token: unknown verb \"%s\"", verb);
    }
    ptc_client_response_dispose(&resp);
    return rc;
}

/* ---- connector ---- */

/* A connector's fields, its tunnel count, then a table of its tunnels if it has any. */
static void print_connector(ptc_cli_t *cli, const json_t *c)
{
    ptc_table_t *t = ptc_table_new(NULL, 2);
    add_object_rows(t, c, "tunnels");
    const json_t *tunnels = json_object_get(c, "tunnels");
    char n[32];
    snprintf(n, sizeof(n), "%zu", json_array_size(tunnels));
    const char *cells[2] = {"tunnels:", n};
    ptc_table_add_row(t, cells);
    ptc_table_print(t, cli->out);
    ptc_table_free(t);
    if (json_array_size(tunnels) > 0) {
        static const column_t cols[] = {{"TUNNEL", "id", COL_TEXT},
                                        {"REMOTE ADDRESS", "remote_addr", COL_TEXT},
                                        {"SINCE", "since", COL_TIME},
                                        {"STREAMS", "streams", COL_TEXT}};
        fputc('\n', cli->out);
        print_list(cli, tunnels, cols, 4);
    }
}

static int connector_move(ptc_cli_t *cli, int argc, char **argv)
{
    const char *group = NULL;
    const char *pos[1] = {NULL};
    const optdef_t opts[] = {{.name = "--group", .value = &group}};
    argspec_t spec = {
        .opts = opts, .opt_cnt = 1, .pos = pos, .min_pos = 1, .max_pos = 1, .pos_names = "ID"};
    size_t npos;
    int rc = parse_args(cli, USAGE_CONNECTOR, "connector move", argc, argv, &spec, &npos);
    if (rc != 0) {
        return rc;
    }
    if (group == NULL) {
        return usage_error(cli, USAGE_CONNECTOR, "connector move needs --group GROUP");
    }
    char path[PATH_CAP];
    if (!make_path(path, "connectors", pos[0])) {
        return usage_error(cli, USAGE_CONNECTOR, "connector move: ID is too long");
    }
    json_t *body = json_pack("{s:s}", "group", group);
    if (body == NULL) {
        return usage_error(cli, USAGE_CONNECTOR, "connector move: GROUP is not valid UTF-8");
    }
    ptc_client_response_t resp = {0};
    rc = call(cli, "PATCH", path, body, &resp);
    json_decref(body);
    if (rc == 0 && !cli->json) {
        say(cli, "moved connector ", nz(jstr(resp.json, "id")), " to group ",
            nz(jstr(resp.json, "group")), NULL);
    }
    ptc_client_response_dispose(&resp);
    return rc;
}

static int cmd_connector(ptc_cli_t *cli, int argc, char **argv)
{
    const char *verb = argv[0];
    ptc_client_response_t resp = {0};
    char path[PATH_CAP];
    const char *id = NULL;
    int rc;
    if (strcmp(verb, "list") == 0) {
        rc = parse_plain(cli, USAGE_CONNECTOR, "connector list", argc - 1, argv + 1, NULL, 0, "");
        if (rc == 0 && (rc = call(cli, "GET", "/v1/connectors", NULL, &resp)) == 0 && !cli->json) {
            static const column_t cols[] = {{"ID", "id", COL_TEXT},
                                            {"GROUP", "group", COL_TEXT},
                                            {"STATUS", "status", COL_TEXT},
                                            {"TUNNELS", "tunnels", COL_TEXT},
                                            {"HOSTNAME", "hostname", COL_TEXT},
                                            {"VERSION", "agent", COL_TEXT},
                                            {"LAST SEEN", "last_seen", COL_AGE}};
            print_list(cli, json_object_get(resp.json, "connectors"), cols, 7);
        }
    } else if (strcmp(verb, "move") == 0) {
        return connector_move(cli, argc - 1, argv + 1);
    } else if (strcmp(verb, "show") == 0 || strcmp(verb, "delete") == 0) {
        char cmd[32];
        snprintf(cmd, sizeof(cmd), "connector %s", verb);
        rc = parse_plain(cli, USAGE_CONNECTOR, cmd, argc - 1, argv + 1, &id, 1, "ID");
        if (rc == 0 && !make_path(path, "connectors", id)) {
            rc = usage_error(cli, USAGE_CONNECTOR, "%s: ID is too long", cmd);
        }
        if (rc == 0 && strcmp(verb, "show") == 0) {
            rc = call(cli, "GET", path, NULL, &resp);
            if (rc == 0 && !cli->json) {
                print_connector(cli, resp.json);
            }
        } else if (rc == 0) {
            rc = call(cli, "DELETE", path, NULL, &resp);
            if (rc == 0 && !cli->json) {
                say(cli, "deleted connector ", id, " (its tunnels are closed)", NULL);
            }
        }
    } else {
        rc = usage_error(cli, USAGE_CONNECTOR, "connector: unknown verb \"%s\"", verb);
    }
    ptc_client_response_dispose(&resp);
    return rc;
}

/* ---- app ---- */

static int app_add(ptc_cli_t *cli, int argc, char **argv)
{
    const char *internal = NULL;
    const char *external = NULL;
    const char *group = NULL;
    const char *pre_auth = NULL;
    const char **sets = ptc_xcalloc((size_t)argc + 1, sizeof(char *));
    size_t set_cnt = 0;
    const char *pos[1] = {NULL};
    const optdef_t opts[] = {
        {.name = "--internal-url", .value = &internal},
        {.name = "--external-url", .value = &external},
        {.name = "--group", .value = &group},
        {.name = "--pre-auth", .value = &pre_auth},
        {.name = "--set", .list = sets, .list_cnt = &set_cnt},
    };
    argspec_t spec = {
        .opts = opts, .opt_cnt = 5, .pos = pos, .min_pos = 1, .max_pos = 1, .pos_names = "NAME"};
    size_t npos;
    json_t *body = NULL;
    ptc_client_response_t resp = {0};
    int rc = parse_args(cli, USAGE_APP, "app add", argc, argv, &spec, &npos);
    if (rc != 0) {
        goto out;
    }
    if (internal == NULL) {
        rc = usage_error(cli, USAGE_APP, "app add needs --internal-url URL");
        goto out;
    }
    body = json_object();
    const char *const fields[][2] = {{"name", pos[0]},
                                     {"internal_url", internal},
                                     {"external_url", external},
                                     {"connector_group", group},
                                     {"pre_auth", pre_auth}};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (fields[i][1] == NULL) {
            continue;
        }
        json_t *s = json_string(fields[i][1]);
        if (s == NULL) {
            rc = usage_error(cli, USAGE_APP, "app add: %s is not valid UTF-8", fields[i][0]);
            goto out;
        }
        json_object_set_new(body, fields[i][0], s);
    }
    for (size_t i = 0; i < set_cnt; i++) {
        char err[512];
        if (!add_setting(body, sets[i], err, sizeof(err))) {
            rc = usage_error(cli, USAGE_APP, "app add: --set %s", err);
            goto out;
        }
    }
    rc = call(cli, "POST", "/v1/apps", body, &resp);
    if (rc == 0 && !cli->json) {
        say(cli, "added app ", nz(jstr(resp.json, "name")), ": ",
            nz(jstr(resp.json, "external_url")), " -> ", nz(jstr(resp.json, "internal_url")), NULL);
    }
out:
    ptc_client_response_dispose(&resp);
    json_decref(body);
    free(sets);
    return rc;
}

static int app_set(ptc_cli_t *cli, int argc, char **argv)
{
    const char **pos = ptc_xcalloc((size_t)argc + 1, sizeof(char *));
    argspec_t spec = {
        .pos = pos, .min_pos = 2, .max_pos = (size_t)argc, .pos_names = "NAME and KEY=VALUE"};
    size_t npos;
    json_t *body = NULL;
    ptc_client_response_t resp = {0};
    char path[PATH_CAP];
    int rc = parse_args(cli, USAGE_APP, "app set", argc, argv, &spec, &npos);
    if (rc != 0) {
        goto out;
    }
    if (!make_path(path, "apps", pos[0])) {
        rc = usage_error(cli, USAGE_APP, "app set: NAME is too long");
        goto out;
    }
    body = json_object();
    for (size_t i = 1; i < npos; i++) {
        char err[512];
        if (!add_setting(body, pos[i], err, sizeof(err))) {
            rc = usage_error(cli, USAGE_APP, "app set: %s", err);
            goto out;
        }
    }
    rc = call(cli, "PATCH", path, body, &resp);
    if (rc == 0 && !cli->json) {
        say(cli, "updated app ", nz(jstr(resp.json, "name")), NULL);
    }
out:
    ptc_client_response_dispose(&resp);
    json_decref(body);
    free(pos);
    return rc;
}

/* The width of a check's label ("probe cn_..."), in code points. */
static size_t check_label(const json_t *check, char *out, size_t cap)
{
    const char *name = jstr(check, "check");
    const char *conn = jstr(check, "connector");
    char *safe = ptc_table_sanitize(name);
    char *safe_conn = conn != NULL ? ptc_table_sanitize(conn) : NULL;
    snprintf(out, cap, "%s%s%s", safe, safe_conn != NULL ? " " : "",
             safe_conn != NULL ? safe_conn : "");
    free(safe);
    free(safe_conn);
    return ptc_table_width(out);
}

/* Prints "    KEY: text" for a check's hint or note, when present. */
static void check_extra(ptc_cli_t *cli, const json_t *check, const char *key)
{
    const char *text = jstr(check, key);
    if (text != NULL) {
        say(cli, "    ", key, ": ", text, NULL);
    }
}

/*
 * The human form of an app test report: one line per check (a check mark or a cross, the
 * check, its detail), the steps of each probe, and the hint of each failure.
 */
static void print_test_report(ptc_cli_t *cli, const json_t *r)
{
    say(cli, "app ", nz(jstr(r, "app")), ": ", nz(jstr(r, "external_url")), " -> ",
        nz(jstr(r, "internal_url")), " (group ", nz(jstr(r, "connector_group")), ")", NULL);
    const json_t *checks = json_object_get(r, "checks");
    size_t width = 0;
    size_t i;
    const json_t *c;
    char label[256];
    json_array_foreach(checks, i, c)
    {
        size_t w = check_label(c, label, sizeof(label));
        width = w > width ? w : width;
    }
    size_t failed = 0;
    json_array_foreach(checks, i, c)
    {
        bool ok = json_is_true(json_object_get(c, "ok"));
        failed += ok ? 0 : 1;
        size_t w = check_label(c, label, sizeof(label));
        char pad[256];
        size_t n = width - w < sizeof(pad) - 1 ? width - w : sizeof(pad) - 1;
        memset(pad, ' ', n);
        pad[n] = '\0';
        say(cli, ok ? "\u2713 " : "\u2717 ", label, pad, "  ", nz(jstr(c, "detail")), NULL);
        size_t k;
        const json_t *st;
        json_array_foreach(json_object_get(c, "steps"), k, st)
        {
            char ms[32] = "";
            json_t *v = json_object_get(st, "ms");
            if (json_is_number(v)) {
                snprintf(ms, sizeof(ms), "%8.2f ms", json_number_value(v));
            }
            char name[8];
            snprintf(name, sizeof(name), "%-5.5s", nz(jstr(st, "step")));
            say(cli, "    ", name, json_is_true(json_object_get(st, "ok")) ? "\u2713" : "\u2717",
                ms, "  ", jstr(st, "detail") != NULL ? jstr(st, "detail") : "", NULL);
        }
        if (!ok) {
            check_extra(cli, c, "hint");
        }
        check_extra(cli, c, "note");
    }
    char summary[96];
    if (failed == 0) {
        snprintf(summary, sizeof(summary), "all %zu checks passed", json_array_size(checks));
    } else {
        snprintf(summary, sizeof(summary), "%zu of %zu checks failed", failed,
                 json_array_size(checks));
    }
    say(cli, summary, NULL);
}

static int app_test(ptc_cli_t *cli, int argc, char **argv)
{
    const char *name = NULL;
    char path[PATH_CAP];
    int rc = parse_plain(cli, USAGE_APP, "app test", argc, argv, &name, 1, "NAME");
    if (rc != 0) {
        return rc;
    }
    static const char suffix[] = "/test";
    if (!make_path(path, "apps", name) || strlen(path) + sizeof(suffix) > PATH_CAP) {
        return usage_error(cli, USAGE_APP, "app test: NAME is too long");
    }
    strcat(path, suffix);
    ptc_client_response_t resp = {0};
    rc = call(cli, "POST", path, NULL, &resp);
    if (rc == 0) {
        if (!cli->json) {
            print_test_report(cli, resp.json);
        }
        /* The exit status says whether the app passed, with --json too (for scripts). */
        rc = json_is_true(json_object_get(resp.json, "ok")) ? PTC_CLI_EXIT_OK : PTC_CLI_EXIT_FAIL;
    }
    ptc_client_response_dispose(&resp);
    return rc;
}

static int cmd_app(ptc_cli_t *cli, int argc, char **argv)
{
    const char *verb = argv[0];
    ptc_client_response_t resp = {0};
    char path[PATH_CAP];
    const char *name = NULL;
    int rc;
    if (strcmp(verb, "add") == 0) {
        return app_add(cli, argc - 1, argv + 1);
    } else if (strcmp(verb, "set") == 0) {
        return app_set(cli, argc - 1, argv + 1);
    } else if (strcmp(verb, "test") == 0) {
        return app_test(cli, argc - 1, argv + 1);
    } else if (strcmp(verb, "list") == 0) {
        rc = parse_plain(cli, USAGE_APP, "app list", argc - 1, argv + 1, NULL, 0, "");
        if (rc == 0 && (rc = call(cli, "GET", "/v1/apps", NULL, &resp)) == 0 && !cli->json) {
            static const column_t cols[] = {{"NAME", "name", COL_TEXT},
                                            {"GROUP", "connector_group", COL_TEXT},
                                            {"PRE-AUTH", "pre_auth", COL_TEXT},
                                            {"EXTERNAL URL", "external_url", COL_TEXT},
                                            {"INTERNAL URL", "internal_url", COL_TEXT}};
            print_list(cli, json_object_get(resp.json, "apps"), cols, 5);
        }
    } else if (strcmp(verb, "show") == 0 || strcmp(verb, "delete") == 0) {
        char cmd[32];
        snprintf(cmd, sizeof(cmd), "app %s", verb);
        rc = parse_plain(cli, USAGE_APP, cmd, argc - 1, argv + 1, &name, 1, "NAME");
        if (rc == 0 && !make_path(path, "apps", name)) {
            rc = usage_error(cli, USAGE_APP, "%s: NAME is too long", cmd);
        }
        if (rc == 0 && strcmp(verb, "show") == 0) {
            rc = call(cli, "GET", path, NULL, &resp);
            if (rc == 0 && !cli->json) {
                print_object(cli, resp.json);
            }
        } else if (rc == 0) {
            rc = call(cli, "DELETE", path, NULL, &resp);
            if (rc == 0 && !cli->json) {
                say(cli, "deleted app ", name, NULL);
            }
        }
    } else {
        rc = usage_error(cli, USAGE_APP, "app: unknown verb \"%s\"", verb);
    }
    ptc_client_response_dispose(&resp);
    return rc;
}

/* ---- cert ---- */

/* Reads a whole PEM file (at most MAX_PEM_FILE bytes) into a NUL-terminated heap string. */
static int read_pem(ptc_cli_t *cli, const char *opt, const char *path, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return fail(cli, "%s %s: %s", opt, path, strerror(errno));
    }
    char *buf = ptc_xmalloc(MAX_PEM_FILE + 1);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, MAX_PEM_FILE + 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            close(fd);
            ptc_keys_wipe(buf, len);
            free(buf);
            return fail(cli, "%s %s: %s", opt, path, strerror(e));
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
        if (len > MAX_PEM_FILE) {
            close(fd);
            ptc_keys_wipe(buf, len);
            free(buf);
            return fail(cli, "%s %s: larger than %d bytes", opt, path, MAX_PEM_FILE);
        }
    }
    close(fd);
    buf[len] = '\0';
    if (strlen(buf) != len) {
        ptc_keys_wipe(buf, len);
        free(buf);
        return fail(cli, "%s %s: not a PEM file (it holds NUL bytes)", opt, path);
    }
    *out = buf;
    return 0;
}

static int cert_add(ptc_cli_t *cli, int argc, char **argv)
{
    const char *cert_file = NULL;
    const char *key_file = NULL;
    const optdef_t opts[] = {
        {.name = "--cert", .value = &cert_file},
        {.name = "--key", .value = &key_file},
    };
    argspec_t spec = {.opts = opts, .opt_cnt = 2};
    size_t npos;
    int rc = parse_args(cli, USAGE_CERT, "cert add", argc, argv, &spec, &npos);
    if (rc != 0) {
        return rc;
    }
    if (cert_file == NULL || key_file == NULL) {
        return usage_error(cli, USAGE_CERT, "cert add needs --cert FILE and --key FILE");
    }
    char *cert = NULL;
    char *key = NULL;
    json_t *body = NULL;
    ptc_client_response_t resp = {0};
    if ((rc = read_pem(cli, "--cert", cert_file, &cert)) != 0 ||
        (rc = read_pem(cli, "--key", key_file, &key)) != 0) {
        goto out;
    }
    body = json_object();
    json_t *c = json_string(cert);
    json_t *k = json_string(key);
    if (c == NULL || k == NULL) {
        json_decref(c);
        json_decref(k);
        rc = fail(cli, "cert add: the files are not PEM text (not valid UTF-8)");
        goto out;
    }
    json_object_set_new(body, "cert_pem", c);
    json_object_set_new(body, "key_pem", k);
    rc = call(cli, "POST", "/v1/certs", body, &resp);
    if (rc == 0 && !cli->json) {
        char *names = field_text(resp.json, "names");
        char *until = time_text(resp.json, "not_after");
        say(cli, "added certificate ", nz(jstr(resp.json, "id")), " for ", nz(names),
            " (valid until ", nz(until), ")", NULL);
        free(names);
        free(until);
    }
out:
    ptc_client_response_dispose(&resp);
    json_decref(body);
    free(cert);
    if (key != NULL) {
        ptc_keys_wipe(key, strlen(key));
        free(key);
    }
    return rc;
}

static int cmd_cert(ptc_cli_t *cli, int argc, char **argv)
{
    const char *verb = argv[0];
    ptc_client_response_t resp = {0};
    int rc;
    if (strcmp(verb, "add") == 0) {
        return cert_add(cli, argc - 1, argv + 1);
    } else if (strcmp(verb, "list") == 0) {
        rc = parse_plain(cli, USAGE_CERT, "cert list", argc - 1, argv + 1, NULL, 0, "");
        if (rc == 0 && (rc = call(cli, "GET", "/v1/certs", NULL, &resp)) == 0 && !cli->json) {
            static const column_t cols[] = {{"ID", "id", COL_TEXT},
                                            {"NAMES", "names", COL_TEXT},
                                            {"NOT AFTER", "not_after", COL_TIME},
                                            {"ADDED", "added_at", COL_TIME}};
            print_list(cli, json_object_get(resp.json, "certs"), cols, 4);
        }
    } else if (strcmp(verb, "delete") == 0) {
        const char *id = NULL;
        char path[PATH_CAP];
        rc = parse_plain(cli, USAGE_CERT, "cert delete", argc - 1, argv + 1, &id, 1, "ID");
        if (rc == 0 && !make_path(path, "certs", id)) {
            rc = usage_error(cli, USAGE_CERT, "cert delete: ID is too long");
        }
        if (rc == 0 && (rc = call(cli, "DELETE", path, NULL, &resp)) == 0 && !cli->json) {
            say(cli, "deleted certificate ", id, NULL);
        }
    } else {
        rc = usage_error(cli, USAGE_CERT, "cert: unknown verb \"%s\"", verb);
    }
    ptc_client_response_dispose(&resp);
    return rc;
}

/* ---- status ---- */

static int cmd_status(ptc_cli_t *cli, int argc, char **argv)
{
    int rc = parse_plain(cli, USAGE_STATUS, "status", argc, argv, NULL, 0, "");
    if (rc != 0) {
        return rc;
    }
    ptc_client_response_t resp = {0};
    rc = call(cli, "GET", "/v1/status", NULL, &resp);
    if (rc == 0 && !cli->json) {
        print_object(cli, resp.json);
    }
    ptc_client_response_dispose(&resp);
    return rc;
}

/* ---- dispatch ---- */

typedef struct resource {
    const char *name;
    const char *usage;
    bool has_verbs;
    int (*run)(ptc_cli_t *cli, int argc, char **argv);
} resource_t;

static const resource_t resources[] = {
    {"group", USAGE_GROUP, true, cmd_group},
    {"token", USAGE_TOKEN, true, cmd_token},
    {"connector", USAGE_CONNECTOR, true, cmd_connector},
    {"app", USAGE_APP, true, cmd_app},
    {"cert", USAGE_CERT, true, cmd_cert},
    {"status", USAGE_STATUS, false, cmd_status},
};

int ptc_commands_run(ptc_cli_t *cli, int argc, char **argv)
{
    const resource_t *r = NULL;
    for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
        if (strcmp(argv[0], resources[i].name) == 0) {
            r = &resources[i];
        }
    }
    if (r == NULL) {
        fprintf(cli->err, "portico: unknown resource \"%s\"\n", argv[0]);
        ptc_commands_short_usage(cli->err);
        return PTC_CLI_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            break;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(r->usage, cli->out);
            return PTC_CLI_EXIT_OK;
        }
    }
    if (!r->has_verbs) {
        return r->run(cli, argc - 1, argv + 1);
    }
    if (argc < 2) {
        return usage_error(cli, r->usage, "%s needs a verb", r->name);
    }
    return r->run(cli, argc - 1, argv + 1);
}
