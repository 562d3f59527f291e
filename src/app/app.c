/*
 * app.c - command line and mode dispatch shared by tillstream-customers
 * and tillstream-orders. Live consumption is wired in by the consumer
 * module; the dry run is the offline pipeline in dryrun.c.
 */
#include "tillstream/app.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
                  "                        suppressions topic's JSON values) loaded first\n");
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

static volatile int g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
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

int ts_app_main(ts_kind_t kind, int argc, char **argv) {
    const char *prog = kind == TS_KIND_ORDER ? "tillstream-orders" : "tillstream-customers";
    const char *config_path = NULL, *input = NULL, *customers = NULL, *suppressions = NULL;
    const char *group = NULL;
    const char *replay_from = NULL, *replay_to = NULL, *replay_outlets = NULL;
    int dry_run = 0, exit_at_end = 0, backfill = -1, check_config = 0;
    enum {
        OPT_DRY = 256,
        OPT_INPUT,
        OPT_CUSTOMERS,
        OPT_EXIT_AT_END,
        OPT_GROUP,
        OPT_BACKFILL,
        OPT_NO_BACKFILL,
        OPT_REPLAY_FROM,
        OPT_REPLAY_TO,
        OPT_REPLAY_OUTLETS,
        OPT_CHECK_CONFIG,
        OPT_SUPPRESSIONS,
        OPT_HELP_CONFIG
    };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"dry-run", no_argument, NULL, OPT_DRY},
        {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
        {"input", required_argument, NULL, OPT_INPUT},
        {"customers", required_argument, NULL, OPT_CUSTOMERS},
        {"suppressions", required_argument, NULL, OPT_SUPPRESSIONS},
        {"exit-at-end", no_argument, NULL, OPT_EXIT_AT_END},
        {"group", required_argument, NULL, OPT_GROUP},
        {"backfill", no_argument, NULL, OPT_BACKFILL},
        {"no-backfill", no_argument, NULL, OPT_NO_BACKFILL},
        {"replay-from", required_argument, NULL, OPT_REPLAY_FROM},
        {"replay-to", required_argument, NULL, OPT_REPLAY_TO},
        {"replay-outlets", required_argument, NULL, OPT_REPLAY_OUTLETS},
        {"help", no_argument, NULL, 'h'},
        {"help-config", no_argument, NULL, OPT_HELP_CONFIG},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case OPT_DRY: dry_run = 1; break;
        case OPT_CHECK_CONFIG: check_config = 1; break;
        case OPT_INPUT: input = optarg; break;
        case OPT_CUSTOMERS: customers = optarg; break;
        case OPT_SUPPRESSIONS: suppressions = optarg; break;
        case OPT_EXIT_AT_END: exit_at_end = 1; break;
        case OPT_GROUP: group = optarg; break;
        case OPT_BACKFILL: backfill = 1; break;
        case OPT_NO_BACKFILL: backfill = 0; break;
        case OPT_REPLAY_FROM: replay_from = optarg; break;
        case OPT_REPLAY_TO: replay_to = optarg; break;
        case OPT_REPLAY_OUTLETS: replay_outlets = optarg; break;
        case 'h': usage(stdout, prog, kind); return 0;
        case OPT_HELP_CONFIG: return print_config_reference(prog);
        case 'V': printf("%s %s\n", prog, TS_VERSION); return 0;
        default: usage(stderr, prog, kind); return 2;
        }
    }
    if (!config_path) {
        fprintf(stderr, "%s: --config FILE is required (see --help)\n", prog);
        return 2;
    }
    char err[512];
    ts_config_t *cfg = NULL;
    ts_err_t rc = ts_config_load(config_path, &cfg, err, sizeof err);
    if (rc != TS_OK) {
        fprintf(stderr, "%s: config %s: %s\n", prog, config_path, err);
        return 2;
    }
    int exit_code = 0;
    if (check_config) {
        /* the messages of a real start, without starting (docs/operations.md) */
        rc = ts_checkconfig_run(cfg, kind, TS_CHECK_KEYS | TS_CHECK_ADMIN, err, sizeof err);
        if (rc != TS_OK) {
            fprintf(stderr, "%s: %s\n", prog, err);
            exit_code = 2;
        } else {
            printf("%s: config %s: ok\n", prog, config_path);
        }
    } else if (dry_run) {
        FILE *in = stdin;
        if (input && !(in = fopen(input, "r"))) {
            fprintf(stderr, "%s: cannot open --input %s\n", prog, input);
            ts_config_destroy(cfg);
            return 2;
        }
        if ((customers && kind != TS_KIND_ORDER) || (suppressions && kind != TS_KIND_CUSTOMER)) {
            fprintf(stderr, "%s: %s is for the %s dry run\n", prog,
                    customers ? "--customers" : "--suppressions",
                    customers ? "orders" : "customers");
            if (in != stdin) fclose(in);
            ts_config_destroy(cfg);
            return 2;
        }
        rc = ts_dryrun_run(cfg, kind, in, customers, suppressions, stdout, NULL, err, sizeof err);
        if (in != stdin) fclose(in);
        if (rc != TS_OK) {
            fprintf(stderr, "%s: dry run: %s\n", prog, err);
            exit_code = rc == TS_ERR_CONFIG ? 2 : 1;
        }
    } else {
        ts_log_level_t lvl = TS_LOG_INFO;
        ts_log_level_parse(cfg->log_level, &lvl);
        ts_log_set_level(lvl);
        ts_log_set_sink(stdout);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        ts_consumer_opts_t co = {.kind = kind,
                                 .prog = prog,
                                 .exit_at_end = exit_at_end,
                                 .group_id = group,
                                 .backfill = backfill == 1,
                                 .stop = &g_stop,
                                 .replay_from_ms = TS_REPLAY_NONE,
                                 .replay_to_ms = TS_REPLAY_NOW,
                                 .replay_outlets = replay_outlets};
        char gbuf[300];
        if (replay_from) {
            if (!strcmp(replay_from, "earliest"))
                co.replay_from_ms = TS_REPLAY_EARLIEST;
            else if (ts_time_parse_iso8601(replay_from, strlen(replay_from), &co.replay_from_ms,
                                           err, sizeof err)) {
                fprintf(stderr, "%s: --replay-from: %s\n", prog, err);
                ts_config_destroy(cfg);
                return 2;
            }
            if (replay_to && strcmp(replay_to, "now") &&
                ts_time_parse_iso8601(replay_to, strlen(replay_to), &co.replay_to_ms, err,
                                      sizeof err)) {
                fprintf(stderr, "%s: --replay-to: %s\n", prog, err);
                ts_config_destroy(cfg);
                return 2;
            }
            if (co.replay_from_ms >= 0 && co.replay_to_ms != TS_REPLAY_NOW &&
                co.replay_to_ms < co.replay_from_ms) {
                fprintf(stderr, "%s: --replay-to is before --replay-from\n", prog);
                ts_config_destroy(cfg);
                return 2;
            }
            co.progress_bar = isatty(STDERR_FILENO) ? stderr : NULL; /* JSON stays on stdout */
            co.backfill = backfill != 0; /* replays are backfills unless --no-backfill */
            if (!group) {
                snprintf(gbuf, sizeof gbuf, "%s-replay",
                         kind == TS_KIND_ORDER ? cfg->group_id_orders : cfg->group_id_customers);
                co.group_id = gbuf;
            }
        } else if (replay_to || replay_outlets) {
            fprintf(stderr, "%s: --replay-to and --replay-outlets need --replay-from\n", prog);
            ts_config_destroy(cfg);
            return 2;
        }
        exit_code = run_consumer(cfg, &co);
    }
    ts_config_destroy(cfg);
    return exit_code;
}
