/* SPDX-License-Identifier: MIT */
#include "edge/store.h"
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct seen {
    char ids[8][64];
    int values[8];
    size_t cnt;
} seen_t;

static int collect(void *data, const char *kind, const char *id, json_t *doc, char *err,
                   size_t errlen)
{
    seen_t *s = data;
    CHECK_STREQ(kind, "apps");
    CHECK_LT(s->cnt, 8);
    snprintf(s->ids[s->cnt], sizeof(s->ids[0]), "%s", id);
    s->values[s->cnt] = (int)json_integer_value(json_object_get(doc, "v"));
    s->cnt++;
    return 0;
}

static ptc_store_t *open_store(const char *dir)
{
    ptc_store_t *s = NULL;
    char err[512];
    CHECK_OK(ptc_store_jsondir_open(dir, &s, err, sizeof(err)));
    return s;
}

static void test_put_load_delete_survives_reopen(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/state", ptc_test_tmpdir());
    ptc_store_t *s = open_store(dir);
    char err[512];
    json_t *a = json_pack("{s:i}", "v", 1);
    json_t *b = json_pack("{s:i}", "v", 2);
    CHECK_OK(ptc_store_put(s, "apps", "beta", b, err, sizeof(err)));
    CHECK_OK(ptc_store_put(s, "apps", "alpha", a, err, sizeof(err)));
    json_decref(a);
    json_decref(b);
    ptc_store_free(s);

    s = open_store(dir);
    seen_t seen = {0};
    CHECK_OK(ptc_store_load(s, "apps", collect, &seen, err, sizeof(err)));
    CHECK_EQ(seen.cnt, 2);
    CHECK_STREQ(seen.ids[0], "alpha"); /* id order */
    CHECK_EQ(seen.values[0], 1);
    CHECK_STREQ(seen.ids[1], "beta");

    /* Replace, then delete. */
    json_t *a2 = json_pack("{s:i}", "v", 10);
    CHECK_OK(ptc_store_put(s, "apps", "alpha", a2, err, sizeof(err)));
    json_decref(a2);
    CHECK_OK(ptc_store_del(s, "apps", "beta", err, sizeof(err)));
    CHECK_EQ(ptc_store_del(s, "apps", "beta", err, sizeof(err)), PTC_ENOTFOUND);
    memset(&seen, 0, sizeof(seen));
    CHECK_OK(ptc_store_load(s, "apps", collect, &seen, err, sizeof(err)));
    CHECK_EQ(seen.cnt, 1);
    CHECK_EQ(seen.values[0], 10);

    /* Files are private. */
    char path[600];
    snprintf(path, sizeof(path), "%s/apps/alpha.json", dir);
    struct stat st;
    CHECK_OK(stat(path, &st));
    CHECK_EQ(st.st_mode & 0777, 0600);
    ptc_store_free(s);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK_NOT_NULL(f);
    fputs(text, f);
    fclose(f);
}

static void test_corrupt_file_fails_load_naming_it_and_is_kept(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/state", ptc_test_tmpdir());
    ptc_store_t *s = open_store(dir);
    char err[512];
    json_t *a = json_pack("{s:i}", "v", 1);
    CHECK_OK(ptc_store_put(s, "apps", "good", a, err, sizeof(err)));
    json_decref(a);
    char path[600];
    snprintf(path, sizeof(path), "%s/apps/bad.json", dir);
    write_file(path, "{\"v\": 1,");
    seen_t seen = {0};
    CHECK_EQ(ptc_store_load(s, "apps", collect, &seen, err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, path);
    CHECK_CONTAINS(err, "invalid JSON");
    /* The corrupt file is still there, untouched. */
    FILE *f = fopen(path, "r");
    CHECK_NOT_NULL(f);
    char buf[32] = {0};
    CHECK_EQ(fread(buf, 1, sizeof(buf) - 1, f), 8);
    fclose(f);
    CHECK_STREQ(buf, "{\"v\": 1,");

    write_file(path, "[1, 2]");
    CHECK_EQ(ptc_store_load(s, "apps", collect, &seen, err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, "expected a JSON object");
    write_file(path, "{\"v\": 1, \"v\": 2}");
    CHECK_EQ(ptc_store_load(s, "apps", collect, &seen, err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, "duplicate");

    /* A certificate document holds a private key: a syntax error inside it (here a stray
     * backslash) is reported by position, without the text jansson would quote. */
    write_file(path, "{\"key_pem\": \"MIIEvQIBADAN\\q\"}");
    CHECK_EQ(ptc_store_load(s, "apps", collect, &seen, err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, "invalid JSON");
    CHECK_CONTAINS(err, ":1:");
    CHECK(strstr(err, "MIIEvQIBADAN") == NULL);
    ptc_store_free(s);
}

static void test_stray_files(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/state", ptc_test_tmpdir());
    ptc_store_t *s = open_store(dir);
    char err[512];
    json_t *a = json_pack("{s:i}", "v", 7);
    CHECK_OK(ptc_store_put(s, "apps", "one", a, err, sizeof(err)));
    json_decref(a);
    /* An interrupted write leaves a temporary file: ignored, the document stays intact. */
    char path[600];
    snprintf(path, sizeof(path), "%s/apps/one.json.tmp.Ab12Cd", dir);
    write_file(path, "{\"v\":");
    seen_t seen = {0};
    CHECK_OK(ptc_store_load(s, "apps", collect, &seen, err, sizeof(err)));
    CHECK_EQ(seen.cnt, 1);
    CHECK_EQ(seen.values[0], 7);
    /* Anything else is refused by name. */
    snprintf(path, sizeof(path), "%s/apps/notes.txt", dir);
    write_file(path, "hello");
    CHECK_EQ(ptc_store_load(s, "apps", collect, &seen, err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, "notes.txt");
    ptc_store_free(s);
}

static int refuse(void *data, const char *kind, const char *id, json_t *doc, char *err,
                  size_t errlen)
{
    snprintf(err, errlen, "name: required key is missing");
    return PTC_ECONFIG;
}

static void test_callback_refusal_names_file(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/state", ptc_test_tmpdir());
    ptc_store_t *s = open_store(dir);
    char err[512];
    json_t *a = json_object();
    CHECK_OK(ptc_store_put(s, "apps", "x", a, err, sizeof(err)));
    json_decref(a);
    CHECK_EQ(ptc_store_load(s, "apps", refuse, NULL, err, sizeof(err)), PTC_ECONFIG);
    CHECK_CONTAINS(err, "/apps/x.json: name: required key is missing");
    ptc_store_free(s);
}

static void test_ids_are_checked(void)
{
    CHECK(ptc_store_id_is_valid("cn_0123abcd"));
    CHECK(ptc_store_id_is_valid("My-App.v2"));
    CHECK(!ptc_store_id_is_valid(""));
    CHECK(!ptc_store_id_is_valid(".hidden"));
    CHECK(!ptc_store_id_is_valid("../etc"));
    CHECK(!ptc_store_id_is_valid("a/b"));
    CHECK(!ptc_store_id_is_valid("sp ace"));
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/state", ptc_test_tmpdir());
    ptc_store_t *s = open_store(dir);
    char err[512];
    json_t *a = json_object();
    CHECK_EQ(ptc_store_put(s, "apps", "../../x", a, err, sizeof(err)), PTC_EFORMAT);
    CHECK_EQ(ptc_store_del(s, "apps", "a/b", err, sizeof(err)), PTC_EFORMAT);
    json_decref(a);
    ptc_store_free(s);
}

static void test_open_refuses_a_file(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/file", ptc_test_tmpdir());
    write_file(path, "x");
    ptc_store_t *s = NULL;
    char err[512];
    CHECK_LT(ptc_store_jsondir_open(path, &s, err, sizeof(err)), 0);
    CHECK_CONTAINS(err, "not a directory");
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_put_load_delete_survives_reopen),
    PTC_TEST(test_corrupt_file_fails_load_naming_it_and_is_kept),
    PTC_TEST(test_stray_files),
    PTC_TEST(test_callback_refusal_names_file),
    PTC_TEST(test_ids_are_checked),
    PTC_TEST(test_open_refuses_a_file),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
