/* SPDX-License-Identifier: MIT */
/*
 * The status file (see status.h). Writing uses a temporary file and rename(2), so a reader
 * sees the old or the new document, never a mix; it skips fsync, since the file describes a
 * running process and means nothing after a crash.
 */
#include "connector/status.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/config.h"

/* ---- helpers ---- */

uint64_t ptc_status_pid_start(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) is in parentheses and may hold spaces: count the fields
     * after its closing parenthesis. starttime is field 22. */
    char *p = strrchr(buf, ')');
    if (p == NULL) {
        return 0;
    }
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (p == NULL) {
            return 0;
        }
    }
    return strtoull(p + 1, NULL, 10);
}

void ptc_status_format_time(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || gmtime_r(&t, &tm) == NULL) {
        snprintf(buf, cap, "-");
        return;
    }
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- writing ---- */

char *ptc_status_to_json(const ptc_status_t *s)
{
    char when[64];
    json_t *doc = json_object();
    json_object_set_new(doc, "version", json_integer(PTC_STATUS_VERSION));
    json_object_set_new(doc, "pid", json_integer(s->pid));
    json_object_set_new(doc, "pid_start", json_integer((json_int_t)s->pid_start));
    json_object_set_new(doc, "agent_version", json_string(s->version != NULL ? s->version : ""));
    json_object_set_new(doc, "connector_id",
                        json_string(s->connector_id != NULL ? s->connector_id : ""));
    json_object_set_new(doc, "group", json_string(s->group != NULL ? s->group : ""));
    ptc_status_format_time(s->started_ms, when, sizeof(when));
    json_object_set_new(doc, "started_at", json_string(when));
    ptc_status_format_time(s->updated_ms, when, sizeof(when));
    json_object_set_new(doc, "updated_at", json_string(when));
    json_object_set_new(doc, "draining", json_boolean(s->draining));
    json_t *arr = json_array();
    for (size_t i = 0; i < s->tunnels_cnt; i++) {
        const ptc_status_tunnel_t *t = &s->tunnels[i];
        json_t *o = json_object();
        json_object_set_new(o, "edge", json_string(t->edge));
        json_object_set_new(o, "slot", json_integer(t->slot));
        json_object_set_new(o, "state", json_string(t->state));
        json_object_set_new(o, "tunnel_id", json_string(t->tunnel_id));
        json_object_set_new(o, "peer", json_string(t->peer));
        ptc_status_format_time(t->since_ms, when, sizeof(when));
        json_object_set_new(o, "since", json_string(when));
        json_object_set_new(o, "streams", json_integer(t->streams));
        if (t->retry_at_ms > 0) {
            ptc_status_format_time(t->retry_at_ms, when, sizeof(when));
            json_object_set_new(o, "retry_at", json_string(when));
        }
        /* Texts come from our own messages and the edge's GOAWAY debug text (already
         * escaped by the caller); jansson refuses invalid UTF-8, so fall back to "". */
        json_t *e = json_string(t->last_error);
        json_object_set_new(o, "last_error", e != NULL ? e : json_string(""));
        json_array_append_new(arr, o);
    }
    json_object_set_new(doc, "tunnels", arr);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL) {
        abort();
    }
    return text;
}

int ptc_status_write(const char *path, const ptc_status_t *s)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
        return UV_ENAMETOOLONG;
    }
    char *text = ptc_status_to_json(s);
    size_t len = strlen(text);
    int rc = 0;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = -errno;
        free(text);
        return rc;
    }
    if (fchmod(fd, 0644) != 0) {
        rc = -errno;
    }
    size_t off = 0;
    while (rc == 0 && off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)n;
    }
    if (rc == 0 && write(fd, "\n", 1) != 1) {
        rc = UV_EIO;
    }
    if (close(fd) != 0 && rc == 0) {
        rc = -errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
    }
    if (rc != 0) {
        unlink(tmp);
    }
    free(text);
    return rc;
}

void ptc_status_remove(const char *path)
{
    (void)unlink(path);
}

/* ---- reading ---- */

static const char *str_member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

static bool process_alive(int pid, uint64_t start)
{
    if (pid <= 0) {
        return false;
    }
    if (kill(pid, 0) != 0 && errno != EPERM) {
        return false;
    }
    /* A pid can be reused by an unrelated process: compare start times when both sides
     * know them. */
    if (start != 0) {
        uint64_t now = ptc_status_pid_start(pid);
        if (now != 0 && now != start) {
            return false;
        }
    }
    return true;
}

static void print_table(json_t *doc, FILE *out)
{
    fprintf(out, "connector %s (group %s), pid %d, version %s, running since %s%s\n",
            str_member(doc, "connector_id"), str_member(doc, "group"),
            (int)json_integer_value(json_object_get(doc, "pid")), str_member(doc, "agent_version"),
            str_member(doc, "started_at"),
            json_is_true(json_object_get(doc, "draining")) ? ", draining" : "");
    json_t *tunnels = json_object_get(doc, "tunnels");
    size_t cnt = json_is_array(tunnels) ? json_array_size(tunnels) : 0;
    /* Column widths from the data, so long edge names stay aligned. */
    int w_edge = 4;
    int w_id = 6;
    for (size_t i = 0; i < cnt; i++) {
        json_t *t = json_array_get(tunnels, i);
        int le = (int)strlen(str_member(t, "edge"));
        int li = (int)strlen(str_member(t, "tunnel_id"));
        w_edge = le > w_edge ? le : w_edge;
        w_id = li > w_id ? li : w_id;
    }
    fprintf(out, "%-*s  %-*s  %-10s  %-20s  %7s  %s\n", w_edge, "EDGE", w_id, "TUNNEL", "STATE",
            "SINCE", "STREAMS", "DETAIL");
    for (size_t i = 0; i < cnt; i++) {
        json_t *t = json_array_get(tunnels, i);
        const char *id = str_member(t, "tunnel_id");
        const char *state = str_member(t, "state");
        char detail[400] = "";
        if (strcmp(state, "backoff") == 0 && json_object_get(t, "retry_at") != NULL) {
            snprintf(detail, sizeof(detail), "retry at %s: %s", str_member(t, "retry_at"),
                     str_member(t, "last_error"));
        } else if (strcmp(state, "up") != 0) {
            snprintf(detail, sizeof(detail), "%s", str_member(t, "last_error"));
        }
        fprintf(out, "%-*s  %-*s  %-10s  %-20s  %7lld  %s\n", w_edge, str_member(t, "edge"), w_id,
                id[0] != '\0' ? id : "-", state, str_member(t, "since"),
                (long long)json_integer_value(json_object_get(t, "streams")), detail);
    }
    if (cnt == 0) {
        fprintf(out, "(no tunnels)\n");
    }
}

int ptc_status_print(const char *path, bool json, FILE *out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        struct stat st;
        if (stat(path, &st) != 0) {
            int e = -errno;
            if (e == UV_ENOENT) {
                snprintf(err, errlen,
                         "no connector is running (no status file at %s; is `portico-connector "
                         "run` started with the same configuration?)",
                         path);
            } else {
                snprintf(err, errlen, "cannot read %s: %s", path, strerror(-e));
            }
            return e;
        }
        snprintf(err, errlen, "%s is not a connector status file (%s)", path,
                 ptc_config_json_reason(&jerr));
        return PTC_EFORMAT;
    }
    int rc = 0;
    json_t *pid = json_object_get(doc, "pid");
    json_t *start = json_object_get(doc, "pid_start");
    if (!json_is_object(doc) || !json_is_integer(pid) ||
        json_integer_value(json_object_get(doc, "version")) != PTC_STATUS_VERSION) {
        snprintf(err, errlen, "%s is not a connector status file", path);
        rc = PTC_EFORMAT;
        goto out;
    }
    if (!process_alive((int)json_integer_value(pid),
                       json_is_integer(start) ? (uint64_t)json_integer_value(start) : 0)) {
        snprintf(err, errlen,
                 "no connector is running (the status file %s names pid %lld, which has exited)",
                 path, (long long)json_integer_value(pid));
        rc = UV_ESRCH;
        goto out;
    }
    if (json) {
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fprintf(out, "%s\n", text != NULL ? text : "{}");
        free(text);
    } else {
        print_table(doc, out);
    }
out:
    json_decref(doc);
    return rc;
}
