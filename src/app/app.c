/*
 * app.c - command line and mode dispatch shared by tillstream-customers
 * and tillstream-orders. Live consumption is wired in by the consumer
 * module; the dry run is the offline pipeline in dryrun.c.
 */
#include "tillstream/app.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app/daemon.h"
#include "app/opts.h"
#include "tillstream/checkconfig.h"
#include "tillstream/consumer.h"

#include "tillstream/config.h"
#include "tillstream/dryrun.h"
#include "tillstream/log.h"
#include "tillstream/model.h"

static void usage(FILE *f, const char *prog, ts_kind_t kind) {
    fprintf(f,
            "Usage: %s --config FILE [options]\n"
            "\n"
            "%s\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE     JSON config (docs/configuration.md)\n"
            "      --check-config    check everything a start checks (API keys resolvable,\n"
            "                        librdkafka properties, registry settings, admin.listen\n"
            "                        free), connect nowhere; exit 0 valid, 2 with the message\n"
            "      --dry-run         offline: read JSON lines, print what would be sent\n"
            "      --input FILE      dry-run input (default: stdin)\n"
            "%s"
            "      --exit-at-end     exit 0 once everything up to the end offsets\n"
            "                        captured at start is done and committed\n"
            "      --group ID        consumer group (default: consumer.group_id_*)\n"
            "      --backfill        send events with backfill: true (no flows fire)\n"
            "      --replay-from T   replay (backfill) from `earliest` or an ISO-8601 time,\n"
            "                        under its own group (--group, default <group>-replay);\n"
            "                        backfill: true unless --no-backfill; exits when done\n"
            "      --replay-to T     end of the window: `now` (default) or an ISO-8601 time\n"
            "      --replay-outlets L  replay only records of these Home Outlets (a,b,c)\n"
            "%s"
            "  -h, --help            this help\n"
            "      --help-config     every config key: path, type, default, description\n"
            "                        (docs/config-reference.md)\n"
            "  -V, --version         print the version\n",
            prog,
            kind == TS_KIND_ORDER
                ? "Reads POS orders from Kafka and sends Placed Order / Ordered Product /\n"
                  "Fulfilled / Cancelled / Refunded Order events to Klaviyo, routed by the\n"
                  "customer's Home Outlet."
                : "Reads POS customers from Kafka and keeps Klaviyo profiles and marketing\n"
                  "consent in step, routed by the customer's Home Outlet.",
            kind == TS_KIND_ORDER
                ? "      --customers FILE  dry-run: customer JSON lines standing in for the\n"
                  "                        customer table\n"
                : "      --suppressions FILE  dry-run: Klaviyo suppression records (the\n"
                  "                        suppressions topic's JSON values) loaded first\n",
            kind == TS_KIND_ORDER
                ? ""
                : "      --replay-consent  with --replay-from: decide and send consent as live\n"
                  "                        (state topic, suppressions), subscribes as historical\n"
                  "                        imports (historical_import, consented_at); without it\n"
                  "                        a replay sends profiles only (docs/consent.md)\n");
}

/* --help-config: the reference the parser's tables give (config.h). */
static int print_config_reference(const char *prog) {
    ts_buf_t ref = TS_BUF_INIT;
    int rc = 0;
    if (ts_config_reference(&ref) != TS_OK) {
        fprintf(stderr, "%s: out of memory\n", prog);
        rc = 1;
    } else {
        fwrite(ref.data, 1, ref.len, stdout);
    }
    ts_buf_free(&ref);
    return rc;
}

/* The consumer's life and the exit code it means: 2 for a configuration
 * error, 1 for a runtime failure or (with --exit-at-end or a replay) a
 * final commit that failed, else 0. */
static int run_consumer(const ts_config_t *cfg, const ts_consumer_opts_t *co) {
    char err[512];
    ts_consumer_t *c = NULL;
    ts_err_t rc = ts_consumer_new(cfg, co, &c, err, sizeof err);
    if (rc != TS_OK) {
        fprintf(stderr, "%s: %s\n", co->prog, err);
        return rc == TS_ERR_CONFIG ? 2 : 1;
    }
    bool must_finish = co->exit_at_end || co->replay_from_ms != TS_REPLAY_NONE;
    ts_err_t run = ts_consumer_run(c);
    ts_err_t drained = ts_consumer_drain(c, err, sizeof err);
    ts_consumer_destroy(c);
    if (run != TS_OK || (drained != TS_OK && !ts_err_retryable(drained))) return 1;
    if (drained != TS_OK && must_finish) {
        fprintf(stderr, "%s: %s: not everything is committed\n", co->prog, err);
        return 1;
    }
    return 0;
}

/* The command line, as parsed. */
typedef struct {
    ts_kind_t kind;
    const char *prog;
    const char *config_path, *input, *customers, *suppressions, *group;
    const char *replay_from, *replay_to, *replay_outlets;
    int dry_run, exit_at_end, backfill, check_config; /* backfill: -1 unset, 0, 1 */
    int replay_consent;
} args_t;

/* Fills *a from argv: -1 to go on, else the exit code (--help, --version,
 * --help-config, a usage error). */
static int parse_args(args_t *a, int argc, char **argv) {
    enum { HELP_CONFIG = 'H' };
    const ts_app_opt_t opts[] = {
        {"input", .str = &a->input},
        {"customers", .str = &a->customers},
        {"suppressions", .str = &a->suppressions},
        {"group", .str = &a->group},
        {"replay-from", .str = &a->replay_from},
        {"replay-to", .str = &a->replay_to},
        {"replay-outlets", .str = &a->replay_outlets},
        {"dry-run", .flag = &a->dry_run, .value = 1},
        {"check-config", .flag = &a->check_config, .value = 1},
        {"exit-at-end", .flag = &a->exit_at_end, .value = 1},
        {"backfill", .flag = &a->backfill, .value = 1},
        {"no-backfill", .flag = &a->backfill, .value = 0},
        {"replay-consent", .flag = &a->replay_consent, .value = 1},
        {"help-config", .value = HELP_CONFIG},
    };
    switch (ts_app_getopt(argc, argv, opts, sizeof opts / sizeof *opts, &a->config_path)) {
    case 0: break;
    case 'h': usage(stdout, a->prog, a->kind); return 0;
    case HELP_CONFIG: return print_config_reference(a->prog);
    case 'V': printf("%s %s\n", a->prog, TS_VERSION); return 0;
    default: usage(stderr, a->prog, a->kind); return 2;
    }
    if (a->replay_consent &&
        (a->kind != TS_KIND_CUSTOMER || !a->replay_from || a->dry_run || a->check_config)) {
        fprintf(stderr, "%s: --replay-consent is for a customers replay (with --replay-from)\n",
                a->prog);
        return 2;
    }
    if (!a->config_path) {
        fprintf(stderr, "%s: --config FILE is required (see --help)\n", a->prog);
        return 2;
    }
    return -1;
}

/* --check-config: the messages of a real start, without starting
 * (docs/operations.md). */
static int check_config_mode(const ts_config_t *cfg, const args_t *a) {
    char err[512];
    if (ts_checkconfig_run(cfg, a->kind, TS_CHECK_KEYS | TS_CHECK_ADMIN, err, sizeof err) !=
        TS_OK) {
        fprintf(stderr, "%s: %s\n", a->prog, err);
        return 2;
    }
    printf("%s: config %s: ok\n", a->prog, a->config_path);
    return 0;
}

static int dry_run_mode(const ts_config_t *cfg, const args_t *a) {
    FILE *in = stdin;
    if (a->input && !(in = fopen(a->input, "r"))) {
        fprintf(stderr, "%s: cannot open --input %s\n", a->prog, a->input);
        return 2;
    }
    if ((a->customers && a->kind != TS_KIND_ORDER) ||
        (a->suppressions && a->kind != TS_KIND_CUSTOMER)) {
        fprintf(stderr, "%s: %s is for the %s dry run\n", a->prog,
                a->customers ? "--customers" : "--suppressions",
                a->customers ? "orders" : "customers");
        if (in != stdin) fclose(in);
        return 2;
    }
    char err[512];
    ts_err_t rc = ts_dryrun_run(cfg, a->kind, in, a->customers, a->suppressions, stdout, NULL, err,
                                sizeof err);
    if (in != stdin) fclose(in);
    if (rc == TS_OK) return 0;
    fprintf(stderr, "%s: dry run: %s\n", a->prog, err);
    return rc == TS_ERR_CONFIG ? 2 : 1;
}

/* --replay-from/--replay-to/--replay-outlets into co: 0, or 2 with the
 * message for a window that is not one. gbuf holds the default replay
 * group (<group>-replay). */
static int replay_window(const ts_config_t *cfg, const args_t *a, ts_consumer_opts_t *co,
                         char *gbuf, size_t gbuf_size) {
    char err[256];
    if (!a->replay_from) {
        if (!a->replay_to && !a->replay_outlets) return 0;
        fprintf(stderr, "%s: --replay-to and --replay-outlets need --replay-from\n", a->prog);
        return 2;
    }
    if (!strcmp(a->replay_from, "earliest"))
        co->replay_from_ms = TS_REPLAY_EARLIEST;
    else if (ts_time_parse_iso8601(a->replay_from, strlen(a->replay_from), &co->replay_from_ms, err,
                                   sizeof err)) {
        fprintf(stderr, "%s: --replay-from: %s\n", a->prog, err);
        return 2;
    }
    if (a->replay_to && strcmp(a->replay_to, "now") &&
        ts_time_parse_iso8601(a->replay_to, strlen(a->replay_to), &co->replay_to_ms, err,
                              sizeof err)) {
        fprintf(stderr, "%s: --replay-to: %s\n", a->prog, err);
        return 2;
    }
    if (co->replay_from_ms >= 0 && co->replay_to_ms != TS_REPLAY_NOW &&
        co->replay_to_ms < co->replay_from_ms) {
        fprintf(stderr, "%s: --replay-to is before --replay-from\n", a->prog);
        return 2;
    }
    co->progress_bar = isatty(STDERR_FILENO) ? stderr : NULL; /* JSON stays on stdout */
    co->backfill = a->backfill != 0; /* replays are backfills unless --no-backfill */
    if (!a->group) {
        snprintf(gbuf, gbuf_size, "%s-replay",
                 a->kind == TS_KIND_ORDER ? cfg->group_id_orders : cfg->group_id_customers);
        co->group_id = gbuf;
    }
    return 0;
}

/* Live consumption (or a replay): logs to stdout, SIGTERM/SIGINT stop. */
static int live_mode(const ts_config_t *cfg, const args_t *a) {
    ts_app_daemon_start(cfg);
    ts_consumer_opts_t co = {.kind = a->kind,
                             .prog = a->prog,
                             .exit_at_end = a->exit_at_end,
                             .group_id = a->group,
                             .backfill = a->backfill == 1,
                             .stop = &ts_app_stop,
                             .replay_from_ms = TS_REPLAY_NONE,
                             .replay_to_ms = TS_REPLAY_NOW,
                             .replay_outlets = a->replay_outlets,
                             .replay_consent = a->replay_consent};
    char gbuf[300];
    int bad = replay_window(cfg, a, &co, gbuf, sizeof gbuf);
    return bad ? bad : run_consumer(cfg, &co);
}

int ts_app_main(ts_kind_t kind, int argc, char **argv) {
    args_t a = {.kind = kind,
                .prog = kind == TS_KIND_ORDER ? "tillstream-orders" : "tillstream-customers",
                .backfill = -1};
    int exit_code = parse_args(&a, argc, argv);
    if (exit_code >= 0) return exit_code;
    char err[512];
    ts_config_t *cfg = NULL;
    if (ts_config_load(a.config_path, &cfg, err, sizeof err) != TS_OK) {
        fprintf(stderr, "%s: config %s: %s\n", a.prog, a.config_path, err);
        return 2;
    }
    if (a.check_config)
        exit_code = check_config_mode(cfg, &a);
    else if (a.dry_run)
        exit_code = dry_run_mode(cfg, &a);
    else
        exit_code = live_mode(cfg, &a);
    ts_config_destroy(cfg);
    return exit_code;
}
