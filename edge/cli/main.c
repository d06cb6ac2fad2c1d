/* SPDX-License-Identifier: MIT */
/*
 * `portico`: the admin CLI of portico-edge (docs/cli.md). main takes the global options
 * (--socket, --url, --token-file, --json) wherever they appear, picks the admin socket
 * (--socket, then $PORTICO_ADMIN_SOCKET, then /run/portico/admin.sock) and hands the rest
 * of the command line to edge/cli/commands. A thin client: it links common/ only and knows
 * the edge through its HTTP+JSON admin API alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge/cli/client.h"
#include "edge/cli/commands.h"

/* Takes "--name VALUE" or "--name=VALUE" at argv[*i]; true if it matched. */
static bool take_value(int argc, char **argv, int *i, const char *name, const char **value,
                       bool *missing)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) {
        return false;
    }
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return true;
    }
    if (argv[*i][n] != '\0') {
        return false;
    }
    if (*i + 1 >= argc) {
        *missing = true;
        return true;
    }
    *value = argv[++*i];
    return true;
}

int main(int argc, char **argv)
{
    const char *socket_path = NULL;
    const char *url = NULL;
    const char *token_file = NULL;
    bool json = false;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    if (rest == NULL) {
        fputs("portico: out of memory\n", stderr);
        return PTC_CLI_EXIT_FAIL;
    }
    int nrest = 0;
    bool after_dashes = false;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *a = argv[i];
        if (after_dashes) {
            rest[nrest++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            /* Kept for the command, which also stops reading options there. */
            after_dashes = true;
            rest[nrest++] = argv[i];
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (take_value(argc, argv, &i, "--socket", &socket_path, &missing) ||
                   take_value(argc, argv, &i, "--url", &url, &missing) ||
                   take_value(argc, argv, &i, "--token-file", &token_file, &missing)) {
            if (missing) {
                fprintf(stderr, "portico: %s needs a value\n", a);
                ptc_commands_short_usage(stderr);
                free(rest);
                return PTC_CLI_EXIT_USAGE;
            }
        } else {
            rest[nrest++] = argv[i];
        }
    }
    if (nrest == 0) {
        fputs("portico: no command given\n", stderr);
        ptc_commands_short_usage(stderr);
        free(rest);
        return PTC_CLI_EXIT_USAGE;
    }
    if (strcmp(rest[0], "--version") == 0) {
        printf("portico %s\n", PTC_VERSION);
        free(rest);
        return PTC_CLI_EXIT_OK;
    }
    if (strcmp(rest[0], "-h") == 0 || strcmp(rest[0], "--help") == 0 ||
        strcmp(rest[0], "help") == 0) {
        ptc_commands_usage(stdout);
        free(rest);
        return PTC_CLI_EXIT_OK;
    }
    if (rest[0][0] == '-') {
        fprintf(stderr, "portico: unknown option %s\n", rest[0]);
        ptc_commands_short_usage(stderr);
        free(rest);
        return PTC_CLI_EXIT_USAGE;
    }
    if (url != NULL && socket_path != NULL) {
        fputs("portico: --socket and --url exclude each other\n", stderr);
        ptc_commands_short_usage(stderr);
        free(rest);
        return PTC_CLI_EXIT_USAGE;
    }
    if (token_file != NULL && url == NULL) {
        fputs("portico: --token-file goes with --url\n", stderr);
        ptc_commands_short_usage(stderr);
        free(rest);
        return PTC_CLI_EXIT_USAGE;
    }
    if (socket_path == NULL) {
        socket_path = getenv("PORTICO_ADMIN_SOCKET");
        if (socket_path == NULL || socket_path[0] == '\0') {
            socket_path = PTC_CLIENT_DEFAULT_SOCKET;
        }
    }
    ptc_client_t client;
    if (ptc_client_init(&client, socket_path, url, token_file) != 0) {
        fprintf(stderr, "portico: %s\n", ptc_client_error(&client));
        ptc_commands_short_usage(stderr);
        ptc_client_dispose(&client);
        free(rest);
        return PTC_CLI_EXIT_USAGE;
    }
    ptc_cli_t cli = {.client = &client, .json = json, .out = stdout, .err = stderr};
    int rc = ptc_commands_run(&cli, nrest, rest);
    ptc_client_dispose(&client);
    free(rest);
    if (fflush(stdout) != 0 && rc == PTC_CLI_EXIT_OK) {
        perror("portico: writing the answer");
        rc = PTC_CLI_EXIT_FAIL;
    }
    return rc;
}
