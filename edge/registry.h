/* SPDX-License-Identifier: MIT */
/*
 * The registry of live tunnels: which authenticated tunnels exist, per connector group and
 * per connector, and how busy each one is. The tunnel server adds a tunnel once its
 * handshake succeeds and removes it when it goes down; the request path asks it for a
 * tunnel of an app's group (ptc_registry_pick: the live, non-draining tunnel with the fewest
 * in-flight streams, ties broken round robin); the admin API reads the live status of a
 * connector (tunnels, remote addresses, since when).
 *
 * Group isolation (docs/protocol.md §14.5): a tunnel's group is the one recorded for its
 * connector by the edge, never anything the connector claims, and pick() only ever returns a
 * tunnel of the group asked for. Moving a connector moves its live tunnels at once.
 *
 * The registry knows nothing of sockets or of the tunnel object: each entry carries an
 * opaque owner pointer (the tunnel) that it hands back. It is pure bookkeeping over libc (and
 * the abort-on-failure allocators of common/err), so it is unit-tested without a loop. One
 * registry per loop.
 */
#ifndef PTC_EDGE_REGISTRY_H
#define PTC_EDGE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/** Longest tunnel id, connector id (docs/protocol.md §11.2 rule 4) and group name kept. */
#define PTC_REGISTRY_ID_MAX 64
#define PTC_REGISTRY_GROUP_MAX 128
/** Room for a remote address ("[v6]:port"). */
#define PTC_REGISTRY_ADDR_MAX 64

typedef struct ptc_registry ptc_registry_t;

/** One live tunnel. Owned by the registry; valid from ptc_registry_add() until removed. */
typedef struct ptc_registry_tunnel ptc_registry_tunnel_t;

/** What the tunnel server tells the registry about a new tunnel (copied by add). */
typedef struct ptc_registry_tunnel_info {
    const char *tunnel_id;    /* "tn_..." */
    const char *connector_id; /* "cn_..." */
    const char *group;        /* the connector's group as the edge records it */
    const char *remote_addr;  /* "203.0.113.5:51234" */
    uint64_t since_ms;        /* wall-clock milliseconds since the epoch */
    void *owner;              /* handed back by pick() and the iterators */
} ptc_registry_tunnel_info_t;

/** A snapshot of one tunnel, for the admin API (strings borrowed until the next change). */
typedef struct ptc_registry_tunnel_status {
    const char *tunnel_id;
    const char *connector_id;
    const char *group;
    const char *remote_addr;
    uint64_t since_ms;
    uint32_t streams; /* in flight */
    bool draining;
    void *owner;
} ptc_registry_tunnel_status_t;

/** Creates an empty registry. Aborts if memory runs out. Free with ptc_registry_free(). */
ptc_registry_t *ptc_registry_new(void);

/** Frees the registry and every entry still in it (their owners are not touched). */
void ptc_registry_free(ptc_registry_t *reg);

/**
 * Adds a live tunnel. Returns 0 and *out (owned by the registry), UV_EINVAL when an id, the
 * group or the address is empty or too long, or PTC_EEXIST when the tunnel id is already
 * registered.
 */
PTC_MUST_CHECK int ptc_registry_add(ptc_registry_t *reg, const ptc_registry_tunnel_info_t *info,
                                    ptc_registry_tunnel_t **out);

/** Removes a tunnel and frees its entry. NULL is ignored. */
void ptc_registry_remove(ptc_registry_t *reg, ptc_registry_tunnel_t *t);

/** Marks a tunnel draining (GOAWAY sent or received): pick() no longer returns it. */
void ptc_registry_set_draining(ptc_registry_t *reg, ptc_registry_tunnel_t *t);

/** Counts a stream opened on the tunnel (in flight until ptc_registry_stream_closed). */
void ptc_registry_stream_opened(ptc_registry_t *reg, ptc_registry_tunnel_t *t);
/** Counts a stream of the tunnel as finished. */
void ptc_registry_stream_closed(ptc_registry_t *reg, ptc_registry_tunnel_t *t);

/**
 * Picks a tunnel of `group` to open a stream on: among its tunnels that are not draining and
 * for which `usable` (may be NULL) returns true, the one with the fewest streams in flight;
 * among equals, the one after the previous pick of the group in turn (round robin). Returns
 * the entry or NULL when the group has no usable tunnel. `usable` lets the caller skip a
 * tunnel that cannot take a stream right now (its peer's max_streams in use).
 */
ptc_registry_tunnel_t *ptc_registry_pick(ptc_registry_t *reg, const char *group,
                                         bool (*usable)(void *owner, void *data), void *data);

/**
 * Moves every live tunnel of a connector to `group` (the connector was moved by an
 * administrator; streams opened later follow the new group). Returns the number of tunnels
 * moved, or UV_EINVAL for an empty or too long group name.
 */
PTC_MUST_CHECK int ptc_registry_move_connector(ptc_registry_t *reg, const char *connector_id,
                                               const char *group);

/**
 * Copies the owner pointers of a connector's live tunnels into owners[0..cap) (oldest first)
 * and returns how many the connector has (which may exceed cap). The copy lets the caller
 * close those tunnels, which removes them from the registry, while walking its own array.
 */
size_t ptc_registry_connector_owners(const ptc_registry_t *reg, const char *connector_id,
                                     void **owners, size_t cap);

/** Copies the owner pointers of every live tunnel (as above). */
size_t ptc_registry_all_owners(const ptc_registry_t *reg, void **owners, size_t cap);

/** The number of live tunnels of a connector (0 if it has none: "inactive"). */
size_t ptc_registry_connector_tunnels(const ptc_registry_t *reg, const char *connector_id);

/**
 * Fills out[0..cap) with a snapshot of a connector's tunnels (oldest first) and returns how
 * many it has. The strings are borrowed until the registry next changes.
 */
size_t ptc_registry_connector_status(const ptc_registry_t *reg, const char *connector_id,
                                     ptc_registry_tunnel_status_t *out, size_t cap);

/** A snapshot of one entry (strings borrowed as above). */
void ptc_registry_tunnel_status(const ptc_registry_tunnel_t *t, ptc_registry_tunnel_status_t *out);

/** The number of live, non-draining tunnels of a group. */
size_t ptc_registry_group_tunnels(const ptc_registry_t *reg, const char *group);

/** Totals: live tunnels, connectors with at least one live tunnel, streams in flight. */
size_t ptc_registry_tunnel_count(const ptc_registry_t *reg);
size_t ptc_registry_connector_count(const ptc_registry_t *reg);
uint64_t ptc_registry_stream_count(const ptc_registry_t *reg);

/** The owner pointer of an entry. */
void *ptc_registry_owner(const ptc_registry_tunnel_t *t);

/** The group an entry currently belongs to (borrowed until the entry moves or goes). */
const char *ptc_registry_group(const ptc_registry_tunnel_t *t);

#endif
