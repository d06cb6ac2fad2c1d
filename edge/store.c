/* SPDX-License-Identifier: MIT */
/*
 * The store interface's dispatch and the embedded JSON-directory backend (see store.h).
 */
#include "edge/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/keys.h"

/* Documents are small; anything bigger is not ours. */
#define DOC_MAX_BYTES (1024 * 1024)

int ptc_store_load(ptc_store_t *s, const char *kind, ptc_store_each_cb cb, void *data, char *err,
                   size_t errlen)
{
    return s->ops->load(s, kind, cb, data, err, errlen);
}

int ptc_store_put(ptc_store_t *s, const char *kind, const char *id, json_t *doc, char *err,
                  size_t errlen)
{
    if (!ptc_store_id_is_valid(id) || !ptc_store_id_is_valid(kind)) {
        snprintf(err, errlen, "invalid document id");
        return PTC_EFORMAT;
    }
    return s->ops->put(s, kind, id, doc, err, errlen);
}

int ptc_store_del(ptc_store_t *s, const char *kind, const char *id, char *err, size_t errlen)
{
    if (!ptc_store_id_is_valid(id) || !ptc_store_id_is_valid(kind)) {
        snprintf(err, errlen, "invalid document id");
        return PTC_EFORMAT;
    }
    return s->ops->del(s, kind, id, err, errlen);
}

void ptc_store_free(ptc_store_t *s)
{
    if (s != NULL) {
        s->ops->free(s);
    }
}

bool ptc_store_id_is_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128 || id[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* ---- JSON directory backend ---- */

typedef struct jsondir {
    ptc_store_t base;
    char *dir;
} jsondir_t;

static int ensure_dir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) != 0) {
            int e = errno;
            snprintf(err, errlen, "%s: %s", path, strerror(e));
            return -e;
        }
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s: not a directory", path);
            return -ENOTDIR;
        }
        return 0;
    }
    int e = errno;
    snprintf(err, errlen, "%s: %s", path, strerror(e));
    return -e;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_doc(const char *path, json_t **out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size > DOC_MAX_BYTES) {
        close(fd);
        snprintf(err, errlen, "%s: larger than %d bytes", path, DOC_MAX_BYTES);
        return PTC_EFORMAT;
    }
    json_error_t jerr;
    json_t *doc = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
    close(fd);
    if (doc == NULL) {
        snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column,
                 ptc_config_json_reason(&jerr));
        return PTC_EFORMAT;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        snprintf(err, errlen, "%s: expected a JSON object", path);
        return PTC_EFORMAT;
    }
    *out = doc;
    return 0;
}

static int jsondir_load(ptc_store_t *s, const char *kind, ptc_store_each_cb cb, void *data,
                        char *err, size_t errlen)
{
    jsondir_t *js = (jsondir_t *)s;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", js->dir, kind);
    int rc = ensure_dir(dir, err, errlen);
    if (rc != 0) {
        return rc;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", dir, strerror(e));
        return -e;
    }
    char **names = NULL;
    size_t cnt = 0;
    size_t cap = 0;
    struct dirent *de;
    rc = 0;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.' || strstr(name, ".json.tmp.") != NULL) {
            /* ".", "..", and the temporary file of a write that was interrupted before its
             * rename: the document it would have replaced is intact. */
            continue;
        }
        size_t n = strlen(name);
        if (n <= 5 || strcmp(name + n - 5, ".json") != 0) {
            snprintf(err, errlen, "%s/%s: unexpected file in the state directory", dir, name);
            rc = PTC_EFORMAT;
            break;
        }
        if (cnt == cap) {
            cap = cap != 0 ? cap * 2 : 16;
            names = ptc_xrealloc(names, cap * sizeof(*names));
        }
        names[cnt++] = ptc_xstrdup(name);
    }
    closedir(d);
    if (rc == 0 && cnt > 1) {
        qsort(names, cnt, sizeof(*names), cmp_names);
    }
    for (size_t i = 0; i < cnt && rc == 0; i++) {
        char id[256];
        size_t n = strlen(names[i]) - 5;
        snprintf(id, sizeof(id), "%.*s", (int)n, names[i]);
        char path[4096 + 300];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (!ptc_store_id_is_valid(id)) {
            snprintf(err, errlen, "%s: invalid document name", path);
            rc = PTC_EFORMAT;
            break;
        }
        json_t *doc = NULL;
        rc = read_doc(path, &doc, err, errlen);
        if (rc != 0) {
            break;
        }
        char cberr[512] = "";
        rc = cb(data, kind, id, doc, cberr, sizeof(cberr));
        json_decref(doc);
        if (rc != 0) {
            snprintf(err, errlen, "%s: %s", path, cberr);
        }
    }
    for (size_t i = 0; i < cnt; i++) {
        free(names[i]);
    }
    free(names);
    return rc;
}

static int jsondir_put(ptc_store_t *s, const char *kind, const char *id, json_t *doc, char *err,
                       size_t errlen)
{
    jsondir_t *js = (jsondir_t *)s;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", js->dir, kind);
    int rc = ensure_dir(dir, err, errlen);
    if (rc != 0) {
        return rc;
    }
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text == NULL) {
        snprintf(err, errlen, "%s/%s.json: cannot encode the document", dir, id);
        return PTC_ENOMEM;
    }
    size_t len = strlen(text);
    text = ptc_xrealloc(text, len + 2);
    text[len++] = '\n';
    text[len] = '\0';
    char path[4096 + 300];
    snprintf(path, sizeof(path), "%s/%s.json", dir, id);
    rc = ptc_keys_write_secret_file(path, text, len);
    /* Documents may hold key material (certificate keys): wipe the serialized copy. */
    ptc_keys_wipe(text, len);
    free(text);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    }
    return rc;
}

static int jsondir_del(ptc_store_t *s, const char *kind, const char *id, char *err, size_t errlen)
{
    jsondir_t *js = (jsondir_t *)s;
    char path[4096 + 300];
    snprintf(path, sizeof(path), "%s/%s/%s.json", js->dir, kind, id);
    if (unlink(path) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOENT ? PTC_ENOTFOUND : -e;
    }
    char dir[4096 + 300];
    snprintf(dir, sizeof(dir), "%s/%s", js->dir, kind);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

static void jsondir_free(ptc_store_t *s)
{
    jsondir_t *js = (jsondir_t *)s;
    free(js->dir);
    free(js);
}

static const ptc_store_ops_t jsondir_ops = {
    .load = jsondir_load,
    .put = jsondir_put,
    .del = jsondir_del,
    .free = jsondir_free,
};

int ptc_store_jsondir_open(const char *dir, ptc_store_t **out, char *err, size_t errlen)
{
    int rc = ensure_dir(dir, err, errlen);
    if (rc != 0) {
        return rc;
    }
    jsondir_t *js = ptc_xcalloc(1, sizeof(*js));
    js->base.ops = &jsondir_ops;
    js->dir = ptc_xstrdup(dir);
    *out = &js->base;
    return 0;
}
