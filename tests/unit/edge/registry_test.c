/* SPDX-License-Identifier: MIT */
/*
 * Tests for edge/registry: adding and removing tunnels, picking the least busy tunnel of a
 * group with round robin among equals, draining and unusable tunnels skipped, group
 * isolation, moving a connector between groups, the per-connector status and owner lists,
 * and the totals. No sockets: owners are plain integers.
 */
#include "edge/registry.h"
#include "tests/support/test.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

static int owners[16];

static ptc_registry_tunnel_t *add(ptc_registry_t *reg, int n, const char *connector,
                                  const char *group)
{
    char id[32];
    char addr[32];
    snprintf(id, sizeof(id), "tn_%016d", n);
    snprintf(addr, sizeof(addr), "192.0.2.%d:4%04d", n, n);
    ptc_registry_tunnel_info_t info = {
        .tunnel_id = id,
        .connector_id = connector,
        .group = group,
        .remote_addr = addr,
        .since_ms = 1000u * (uint64_t)n,
        .owner = &owners[n],
    };
    ptc_registry_tunnel_t *t = NULL;
    CHECK_OK(ptc_registry_add(reg, &info, &t));
    CHECK_NOT_NULL(t);
    CHECK(ptc_registry_owner(t) == &owners[n]);
    return t;
}

static int picked(ptc_registry_t *reg, const char *group)
{
    ptc_registry_tunnel_t *t = ptc_registry_pick(reg, group, NULL, NULL);
    if (t == NULL) {
        return -1;
    }
    return (int)((int *)ptc_registry_owner(t) - owners);
}

static void test_empty_group_picks_nothing(void)
{
    ptc_registry_t *reg = ptc_registry_new();
    CHECK_EQ(picked(reg, "Default"), -1);
    CHECK_EQ(ptc_registry_tunnel_count(reg), 0);
    CHECK_EQ(ptc_registry_connector_count(reg), 0);
    CHECK_EQ(ptc_registry_connector_tunnels(reg, "cn_a"), 0);
    ptc_registry_free(reg);
}

static void test_round_robin_among_equals(void)
{
    ptc_registry_t *reg = ptc_registry_new();
    add(reg, 1, "cn_a", "Default");
    add(reg, 2, "cn_a", "Default");
    add(reg, 3, "cn_b", "Default");
    CHECK_EQ(picked(reg, "Default"), 1);
    CHECK_EQ(picked(reg, "Default"), 2);
    CHECK_EQ(picked(reg, "Default"), 3);
    CHECK_EQ(picked(reg, "Default"), 1);
    CHECK_EQ(picked(reg, "Default"), 2);
    ptc_registry_free(reg);
}

static void test_fewest_streams_wins(void)
{
    ptc_registry_t *reg = ptc_registry_new();
    ptc_registry_tunnel_t *t1 = add(reg, 1, "cn_a", "Default");
    ptc_registry_tunnel_t *t2 = add(reg, 2, "cn_a", "Default");
    ptc_registry_tunnel_t *t3 = add(reg, 3, "cn_b", "Default");
    ptc_registry_stream_opened(reg, t1);
    ptc_registry_stream_opened(reg, t1);
    ptc_registry_stream_opened(reg, t2);
    ptc_registry_stream_opened(reg, t3);
    ptc_registry_stream_opened(reg, t3);
    /* t2 has one stream, the others two. */
    CHECK_EQ(picked(reg, "Default"), 2);
    CHECK_EQ(picked(reg, "Default"), 2);
    CHECK_UEQ(ptc_registry_stream_count(reg), 5);
    ptc_registry_stream_closed(reg, t3);
    ptc_registry_stream_closed(reg, t3);
    CHECK_EQ(picked(reg, "Default"), 3);
    CHECK_UEQ(ptc_registry_stream_count(reg), 3);
    /* Closing more than were opened never underflows. */
    ptc_registry_stream_closed(reg, t3);
    CHECK_UEQ(ptc_registry_stream_count(reg), 3);
    ptc_registry_tunnel_status_t st;
    ptc_registry_tunnel_status(t1, &st);
    CHECK_EQ(st.streams, 2);
    /* Removing a busy tunnel takes its streams out of the total. */
    ptc_registry_remove(reg, t1);
    CHECK_UEQ(ptc_registry_stream_count(reg), 1);
    ptc_registry_free(reg);
}

static void test_draining_is_skipped(void)
{
    ptc_registry_t *reg = ptc_registry_new();
    ptc_registry_tunnel_t *t1 = add(reg, 1, "cn_a", "Default");
    add(reg, 2, "cn_a", "Default");
    ptc_registry_set_draining(reg, t1);
    CHECK_EQ(picked(reg, "Default"), 2);
    CHECK_EQ(picked(reg, "Default"), 2);
    CHECK_EQ(ptc_registry_group_tunnels(reg, "Default"), 1);
    /* A draining tunnel is still live (counted, listed) until removed. */
    CHECK_EQ(ptc_registry_tunnel_count(reg), 2);
    CHECK_EQ(ptc_registry_connector_tunnels(reg, "cn_a"), 2);
    ptc_registry_tunnel_status_t st;
    ptc_registry_tunnel_status(t1, &st);
    CHECK(st.draining);
    ptc_registry_free(reg);
}

static bool only_odd(void *owner, void *data)
{
    CHECK(data == (void *)owners);
    return (((int *)owner - owners) % 2) == 1;
}

static void test_unusable_is_skipped(void)
{
    ptc_registry_t *reg = ptc_registry_new();
    add(reg, 1, "cn_a", "Default");
    add(reg, 2, "cn_a", "Default");
    add(reg, 3, "cn_a", "Default");
    ptc_registry_tunnel_t *t = ptc_registry_pick(reg, "Default", only_odd, owners);
    CHECK(ptc_registry_owner(t) == &owners[1]);
    t = ptc_registry_pick(reg, "Default", only_odd, owners);
    CHECK(ptc_registry_owner(t) == &owners[3]);
    t = ptc_registry_pick(reg, "Default", only_odd, owners);
    CHECK(ptc_registry_owner(t) == &owners[1]);
    ptc_registry_free(reg);
}

static void test_groups_are_isolated(void)
{
    ptc_registry_t *reg = ptc_registry_new();
    add(reg, 1, "cn_a", "Default");
    add(reg, 2, "cn_b", "Finance");
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(picked(reg, "Default"), 1);
        CHECK_EQ(picked(reg, "Finance"), 2);
    }
    CHECK_EQ(picked(reg, "finance"), -1); /* names are case-sensitive */
    CHECK_EQ(picked(reg, "Other"), -1);
    ptc_registry_free(reg);
}

static void test_move_connector(void)
{
    ptc_registry_t *reg = ptc_registry_new();
    ptc_registry_tunnel_t *t1 = add(reg, 1, "cn_a", "Default");
    add(reg, 2, "cn_a", "Default");
    add(reg, 3, "cn_b", "Default");
    CHECK_EQ(ptc_registry_move_connector(reg, "cn_a", "Finance"), 2);
    CHECK_STREQ(ptc_registry_group(t1), "Finance");
    CHECK_EQ(ptc_registry_group_tunnels(reg, "Default"), 1);
    CHECK_EQ(ptc_registry_group_tunnels(reg, "Finance"), 2);
    CHECK_EQ(picked(reg, "Default"), 3);
    CHECK_EQ(picked(reg, "Default"), 3);
    CHECK_EQ(picked(reg, "Finance"), 1);
    CHECK_EQ(picked(reg, "Finance"), 2);
    /* Moving to the same group moves nothing; an unknown connector has nothing to move. */
    CHECK_EQ(ptc_registry_move_connector(reg, "cn_a", "Finance"), 0);
    CHECK_EQ(ptc_registry_move_connector(reg, "cn_zz", "Finance"), 0);
    CHECK_EQ(ptc_registry_move_connector(reg, "cn_a", ""), UV_EINVAL);
    ptc_registry_free(reg);
}

static void test_remove_and_round_robin_cursor(void)
{
    ptc_registry_t *reg = ptc_registry_new();
    ptc_registry_tunnel_t *t1 = add(reg, 1, "cn_a", "Default");
    ptc_registry_tunnel_t *t2 = add(reg, 2, "cn_a", "Default");
    add(reg, 3, "cn_a", "Default");
    CHECK_EQ(picked(reg, "Default"), 1);
    CHECK_EQ(picked(reg, "Default"), 2);
    /* Removing the last picked keeps the turn on the one that came next. */
    ptc_registry_remove(reg, t2);
    CHECK_EQ(picked(reg, "Default"), 3);
    CHECK_EQ(picked(reg, "Default"), 1);
    ptc_registry_remove(reg, t1);
    CHECK_EQ(picked(reg, "Default"), 3);
    CHECK_EQ(ptc_registry_tunnel_count(reg), 1);
    ptc_registry_free(reg);
}

static void test_status_and_owners(void)
{
    ptc_registry_t *reg = ptc_registry_new();
    add(reg, 1, "cn_a", "Default");
    add(reg, 2, "cn_b", "Default");
    ptc_registry_tunnel_t *t3 = add(reg, 3, "cn_a", "Default");
    ptc_registry_stream_opened(reg, t3);
    CHECK_EQ(ptc_registry_connector_count(reg), 2);
    CHECK_EQ(ptc_registry_tunnel_count(reg), 3);

    ptc_registry_tunnel_status_t st[4];
    CHECK_EQ(ptc_registry_connector_status(reg, "cn_a", st, 4), 2);
    CHECK_STREQ(st[0].tunnel_id, "tn_0000000000000001");
    CHECK_STREQ(st[0].remote_addr, "192.0.2.1:40001");
    CHECK_UEQ(st[0].since_ms, 1000);
    CHECK_EQ(st[0].streams, 0);
    CHECK_STREQ(st[1].tunnel_id, "tn_0000000000000003");
    CHECK_STREQ(st[1].connector_id, "cn_a");
    CHECK_STREQ(st[1].group, "Default");
    CHECK_EQ(st[1].streams, 1);
    CHECK(st[1].owner == &owners[3]);
    /* A small array still reports the full count. */
    CHECK_EQ(ptc_registry_connector_status(reg, "cn_a", st, 1), 2);
    CHECK_EQ(ptc_registry_connector_status(reg, "cn_none", st, 4), 0);

    void *own[4] = {0};
    CHECK_EQ(ptc_registry_connector_owners(reg, "cn_a", own, 4), 2);
    CHECK(own[0] == &owners[1]);
    CHECK(own[1] == &owners[3]);
    CHECK_EQ(ptc_registry_all_owners(reg, own, 4), 3);
    CHECK_EQ(ptc_registry_all_owners(reg, own, 2), 3);
    ptc_registry_free(reg);
}

static void test_connector_goes_inactive(void)
{
    ptc_registry_t *reg = ptc_registry_new();
    ptc_registry_tunnel_t *t1 = add(reg, 1, "cn_a", "Default");
    ptc_registry_tunnel_t *t2 = add(reg, 2, "cn_a", "Default");
    ptc_registry_remove(reg, t1);
    CHECK_EQ(ptc_registry_connector_tunnels(reg, "cn_a"), 1);
    ptc_registry_remove(reg, t2);
    CHECK_EQ(ptc_registry_connector_tunnels(reg, "cn_a"), 0);
    CHECK_EQ(ptc_registry_connector_count(reg), 0);
    CHECK_EQ(picked(reg, "Default"), -1);
    ptc_registry_remove(reg, NULL);
    ptc_registry_free(reg);
}

static void test_add_refuses_bad_input(void)
{
    ptc_registry_t *reg = ptc_registry_new();
    add(reg, 1, "cn_a", "Default");
    ptc_registry_tunnel_t *t = NULL;
    ptc_registry_tunnel_info_t dup = {.tunnel_id = "tn_0000000000000001",
                                      .connector_id = "cn_b",
                                      .group = "Default",
                                      .remote_addr = "192.0.2.9:1"};
    CHECK_EQ(ptc_registry_add(reg, &dup, &t), PTC_EEXIST);
    CHECK_NULL(t);
    ptc_registry_tunnel_info_t empty = dup;
    empty.tunnel_id = "tn_x";
    empty.group = "";
    CHECK_EQ(ptc_registry_add(reg, &empty, &t), UV_EINVAL);
    char longid[80];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    ptc_registry_tunnel_info_t too_long = dup;
    too_long.tunnel_id = longid;
    CHECK_EQ(ptc_registry_add(reg, &too_long, &t), UV_EINVAL);
    CHECK_EQ(ptc_registry_tunnel_count(reg), 1);
    ptc_registry_free(reg);
}

static void test_many_tunnels_grow_maps(void)
{
    ptc_registry_t *reg = ptc_registry_new();
    ptc_registry_tunnel_t *ts[200];
    for (int i = 0; i < 200; i++) {
        char id[32];
        char cn[32];
        char group[32];
        snprintf(id, sizeof(id), "tn_%d", i);
        snprintf(cn, sizeof(cn), "cn_%d", i / 2);
        snprintf(group, sizeof(group), "g%d", i % 7);
        ptc_registry_tunnel_info_t info = {
            .tunnel_id = id, .connector_id = cn, .group = group, .remote_addr = "192.0.2.1:1"};
        CHECK_OK(ptc_registry_add(reg, &info, &ts[i]));
    }
    CHECK_EQ(ptc_registry_tunnel_count(reg), 200);
    CHECK_EQ(ptc_registry_connector_count(reg), 100);
    CHECK_EQ(ptc_registry_connector_tunnels(reg, "cn_42"), 2);
    CHECK_EQ(ptc_registry_group_tunnels(reg, "g3"), 29);
    for (int i = 0; i < 200; i += 2) {
        ptc_registry_remove(reg, ts[i]);
    }
    CHECK_EQ(ptc_registry_connector_count(reg), 100);
    CHECK_EQ(ptc_registry_tunnel_count(reg), 100);
    ptc_registry_free(reg);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_empty_group_picks_nothing),
    PTC_TEST(test_round_robin_among_equals),
    PTC_TEST(test_fewest_streams_wins),
    PTC_TEST(test_draining_is_skipped),
    PTC_TEST(test_unusable_is_skipped),
    PTC_TEST(test_groups_are_isolated),
    PTC_TEST(test_move_connector),
    PTC_TEST(test_remove_and_round_robin_cursor),
    PTC_TEST(test_status_and_owners),
    PTC_TEST(test_connector_goes_inactive),
    PTC_TEST(test_add_refuses_bad_input),
    PTC_TEST(test_many_tunnels_grow_maps),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
