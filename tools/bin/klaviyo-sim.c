/*
 * tillstream-klaviyo-sim: the Klaviyo simulator as a process, for
 * developers, tests, benchmarks and the compose file (docs/simulator.md).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tillstream/log.h"
#include "tillstream/sim.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "Usage: tillstream-klaviyo-sim [options]\n"
        "A Klaviyo API simulator (revision 2026-07-15) for tests and local development.\n\n"
        "  --listen HOST:PORT        address (default 127.0.0.1:0 = a free port)\n"
        "  --port-file PATH          write the bound port there once listening\n"
        "  --account NAME=ENVVAR     an account whose API key is in $ENVVAR (repeatable)\n"
        "  --account-key-file NAME=PATH  an account whose API key is in PATH\n"
        "  --limit EP=B/s,S/m        rate limit per endpoint, repeatable (events_bulk,\n"
        "                            profiles_bulk, subscribe_bulk, unsubscribe_bulk,\n"
        "                            create_event, profile_import, get_profiles);\n"
        "                            default Klaviyo's\n"
        "  --rate-scale X            multiply all limits by X (faster tests)\n"
        "  --fail-rate F             fraction of requests answered 500/503 (nothing recorded)\n"
        "  --drop-rate F             fraction of connections closed without an answer\n"
        "  --latency-ms N            latency added to every request\n"
        "  --spike-rate F --spike-ms N  occasional latency spikes\n"
        "  --seed N                  fault injection seed\n"
        "  --events-summary-only     keep only de-duplication keys and counters\n"
        "  --dump-bodies DIR         write every accepted request body to DIR\n"
        "  --spaced-json             error documents with a space after ':' and ','\n"
        "  --throttle-account NAME=X multiply NAME's limits by X (e.g. 0.01: a throttled account)\n"
        "  --retired-before DATE     answer 410 Gone to revisions before DATE (YYYY-MM-DD)\n"
        "  --job-delay-ms N          profile import jobs complete N ms after the 202\n"
        "                            (default 200; negative: never)\n"
        "  --log-level LEVEL         debug|info|warn|error|off (JSON lines on stderr;\n"
        "                            debug logs every rejected request)\n"
        "  -h, --help, -V, --version\n\n"
        "Inspection: GET /__sim/stats, GET /__sim/accounts/NAME/events,\n"
        "GET /__sim/accounts/NAME/profiles, POST /__sim/reset,\n"
        "GET /__sim/jobs, POST /__sim/jobs {\"delay_ms\": N}\n");
}

typedef struct {
    ts_sim_opts_t o;
    char host[64];
    const char *port_file;
    struct {
        char *name, *key;
    } accts[64];
    int n_accts;
} args_t;

/* --listen HOST:PORT */
static int parse_listen(args_t *a, const char *v) {
    const char *colon = strrchr(v, ':');
    if (!colon) return -1;
    snprintf(a->host, sizeof a->host, "%.*s", (int)(colon - v), v);
    a->o.port = atoi(colon + 1);
    return 0;
}

/* --account NAME=ENV or --account-key-file NAME=FILE: 0, -1 (usage), or
 * 2 after saying that the key is missing. */
static int add_account(args_t *a, char *v, bool from_file) {
    char *eq = strchr(v, '=');
    if (!eq || a->n_accts == 64) return -1;
    *eq = '\0';
    const char *env = from_file ? NULL : getenv(eq + 1);
    char *key = from_file ? ts_secret_file_read(eq + 1) : (env ? strdup(env) : NULL);
    if (!key || !*key) {
        fprintf(stderr, "tillstream-klaviyo-sim: --account %s: no key in %s\n", v, eq + 1);
        free(key);
        return 2;
    }
    a->accts[a->n_accts].name = v;
    a->accts[a->n_accts++].key = key;
    return 0;
}

/* --throttle-account NAME=SCALE */
static int parse_throttle(ts_sim_opts_t *o, char *v) {
    char *eq = strchr(v, '=');
    if (!eq) return -1;
    *eq = '\0';
    o->throttle_account = v;
    o->throttle_scale = atof(eq + 1);
    return 0;
}

static int parse_log_level(const char *v) {
    ts_log_level_t lvl;
    if (ts_log_level_parse(v, &lvl) != 0) return -1;
    ts_log_set_level(lvl);
    return 0;
}

/* The numeric options (rates, milliseconds, the seed): false for another. */
static bool number_opt(ts_sim_opts_t *o, int c, const char *v) {
    switch (c) {
    case 'r': o->rate_scale = atof(v); break;
    case 'f': o->fail_rate = atof(v); break;
    case 'd': o->drop_rate = atof(v); break;
    case 't': o->latency_ms = atoi(v); break;
    case 's': o->spike_rate = atof(v); break;
    case 'S': o->spike_ms = atoi(v); break;
    case 'e': o->seed = strtoull(v, NULL, 10); break;
    case 'Y': o->job_delay_ms = atoi(v); break;
    default: return false;
    }
    return true;
}

/* Fills *a: -1 to go on, else the exit code (--help, --version, usage). */
static int parse_args(args_t *a, int argc, char **argv) {
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"port-file", required_argument, NULL, 'p'},
                                         {"account", required_argument, NULL, 'a'},
                                         {"account-key-file", required_argument, NULL, 'k'},
                                         {"limit", required_argument, NULL, 'L'},
                                         {"rate-scale", required_argument, NULL, 'r'},
                                         {"fail-rate", required_argument, NULL, 'f'},
                                         {"drop-rate", required_argument, NULL, 'd'},
                                         {"latency-ms", required_argument, NULL, 't'},
                                         {"spike-rate", required_argument, NULL, 's'},
                                         {"spike-ms", required_argument, NULL, 'S'},
                                         {"seed", required_argument, NULL, 'e'},
                                         {"events-summary-only", no_argument, NULL, 'o'},
                                         {"dump-bodies", required_argument, NULL, 'D'},
                                         {"throttle-account", required_argument, NULL, 'T'},
                                         {"spaced-json", no_argument, NULL, 'J'},
                                         {"log-level", required_argument, NULL, 'v'},
                                         {"job-delay-ms", required_argument, NULL, 'Y'},
                                         {"retired-before", required_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    ts_sim_opts_t *o = &a->o;
    int c, bad = 0;
    while (!bad && (c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
        switch (c) {
        case 'l': bad = parse_listen(a, optarg); break;
        case 'p': a->port_file = optarg; break;
        case 'a':
        case 'k': bad = add_account(a, optarg, c == 'k'); break;
        case 'L': bad = ts_sim_parse_limit(o, optarg) != TS_OK ? -1 : 0; break;
        case 'o': o->summary_only = true; break;
        case 'J': o->spaced_json = true; break;
        case 'T': bad = parse_throttle(o, optarg); break;
        case 'D': o->dump_dir = optarg; break;
        case 'R':
            o->retired_before = optarg;
            bad = ts_sim_revision_valid(optarg) && strlen(optarg) == 10 ? 0 : -1;
            break;
        case 'v': bad = parse_log_level(optarg); break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("tillstream-klaviyo-sim %s\n", TS_VERSION); return 0;
        default: bad = number_opt(o, c, optarg) ? 0 : -1;
        }
    }
    if (bad < 0) usage(stderr);
    return bad ? 2 : -1;
}

/* The port for scripts: written to a temporary file, then renamed. */
static void write_port_file(const char *path, int port) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%d\n", port);
    fclose(f);
    rename(tmp, path);
}

int main(int argc, char **argv) {
    args_t a = {.host = "127.0.0.1"};
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0) return rc;
    a.o.listen_host = a.host;
    /* SIGTERM/SIGINT are blocked in every thread (the server's threads
     * inherit the mask) and taken by sigwait() below. */
    sigset_t stop_sigs;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    char err[256];
    ts_sim_t *s = ts_sim_new(&a.o, err, sizeof err);
    if (!s) {
        fprintf(stderr, "tillstream-klaviyo-sim: %s\n", err);
        return 1;
    }
    for (int i = 0; i < a.n_accts; i++) {
        ts_sim_add_account(s, a.accts[i].name, a.accts[i].key);
        memset(a.accts[i].key, 0, strlen(a.accts[i].key));
        free(a.accts[i].key);
    }
    if (ts_sim_start(s, err, sizeof err) != TS_OK) {
        fprintf(stderr, "tillstream-klaviyo-sim: %s\n", err);
        ts_sim_destroy(s);
        return 1;
    }
    printf("listening on http://%s:%d\n", a.host, ts_sim_port(s));
    fflush(stdout);
    char ctx[160];
    snprintf(ctx, sizeof ctx, "\"port\":%d,\"accounts\":%d", ts_sim_port(s), a.n_accts);
    ts_log(TS_LOG_INFO, "klaviyo-sim", ctx, "listening on %s", a.host);
    if (a.port_file) write_port_file(a.port_file, ts_sim_port(s));
    int sig = 0;
    sigwait(&stop_sigs, &sig); /* SIGTERM / SIGINT: stop cleanly, exit 0 */
    ts_log(TS_LOG_INFO, "klaviyo-sim", NULL, "stopping");
    ts_sim_destroy(s);
    return 0;
}
