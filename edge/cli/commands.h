/* SPDX-License-Identifier: MIT */
/*
 * The `portico` CLI's commands (docs/cli.md): one function per resource (group, token,
 * connector, app, cert, status) that checks its verb and arguments, makes one admin-API
 * request through edge/cli/client and prints the answer as an aligned table, as a short
 * confirmation, or with --json as the API's JSON exactly as received. Depends on common/
 * and the CLI's client and table helpers.
 */
#ifndef PTC_EDGE_CLI_COMMANDS_H
#define PTC_EDGE_CLI_COMMANDS_H

#include <stdbool.h>
#include <stdio.h>

#include "edge/cli/client.h"

/** Exit statuses of the CLI. */
enum {
    PTC_CLI_EXIT_OK = 0,
    /** The API refused the request, or the edge could not be reached. */
    PTC_CLI_EXIT_FAIL = 1,
    /** The command line is wrong (a short usage text was printed). */
    PTC_CLI_EXIT_USAGE = 2,
};

/** What a command runs with (filled by main). */
typedef struct ptc_cli {
    /** Initialized by main (borrowed). */
    ptc_client_t *client;
    /** --json: print the API's JSON as received. */
    bool json;
    /** Where answers and errors go (stdout and stderr in the program). */
    FILE *out;
    FILE *err;
} ptc_cli_t;

/**
 * Runs one command. argv[0] is the resource ("group", ...), argv[1] the verb, the rest its
 * arguments; global options are already removed. "-h"/"--help" anywhere prints that
 * resource's usage to cli->out and returns 0. Returns a PTC_CLI_EXIT_* status; messages are
 * written to cli->err.
 */
int ptc_commands_run(ptc_cli_t *cli, int argc, char **argv);

/** Prints the full usage text (all resources and the global options). */
void ptc_commands_usage(FILE *out);

/** Prints the two-line usage shown with a usage error. */
void ptc_commands_short_usage(FILE *out);

#endif
