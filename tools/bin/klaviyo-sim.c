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
        "  --job-delay-ms N          profile import jobs complete N ms after the 202\n"
        "                            (default 200; negative: never)\n"
        "  --log-level LEVEL         debug|info|warn|error|off (JSON lines on stderr;\n"
        "                            debug logs every rejected request)\n"
        "  -h, --help, -V, --version\n\n"
        "Inspection: GET /__sim/stats, GET /__sim/accounts/NAME/events,\n"
        "GET /__sim/accounts/NAME/profiles, POST /__sim/reset,\n"
        "GET /__sim/jobs, POST /__sim/jobs {\"delay_ms\": N}\n");
}

int main(int argc, char **argv) {
    ts_sim_opts_t o;
    memset(&o, 0, sizeof o);
    char host[64] = "127.0.0.1";
    const char *port_file = NULL;
    struct {
        char *name, *key;
    } accts[64];
    int n_accts = 0;
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
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
        switch (c) {
        case 'l': {
            const char *colon = strrchr(optarg, ':');
            if (!colon) goto bad;
            snprintf(host, sizeof host, "%.*s", (int)(colon - optarg), optarg);
            o.port = atoi(colon + 1);
            break;
        }
        case 'p': port_file = optarg; break;
        case 'a':
        case 'k': {
            char *eq = strchr(optarg, '=');
            if (!eq || n_accts == 64) goto bad;
            *eq = '\0';
            const char *v = c == 'a' ? getenv(eq + 1) : NULL;
            char *key = c == 'a' ? (v ? strdup(v) : NULL) : ts_secret_file_read(eq + 1);
            if (!key || !*key) {
                fprintf(stderr, "tillstream-klaviyo-sim: --account %s: no key in %s\n", optarg,
                        eq + 1);
                return 2;
            }
            accts[n_accts].name = optarg;
            accts[n_accts++].key = key;
            break;
        }
        case 'L':
            if (ts_sim_parse_limit(&o, optarg) != TS_OK) goto bad;
            break;
        case 'r': o.rate_scale = atof(optarg); break;
        case 'f': o.fail_rate = atof(optarg); break;
        case 'd': o.drop_rate = atof(optarg); break;
        case 't': o.latency_ms = atoi(optarg); break;
        case 's': o.spike_rate = atof(optarg); break;
        case 'S': o.spike_ms = atoi(optarg); break;
        case 'e': o.seed = strtoull(optarg, NULL, 10); break;
        case 'o': o.summary_only = true; break;
        case 'J': o.spaced_json = true; break;
        case 'T': {
            char *eq = strchr(optarg, '=');
            if (!eq) goto bad;
            *eq = '\0';
            o.throttle_account = optarg;
            o.throttle_scale = atof(eq + 1);
            break;
        }
        case 'D': o.dump_dir = optarg; break;
        case 'Y': o.job_delay_ms = atoi(optarg); break;
        case 'v': {
            ts_log_level_t lvl;
            if (ts_log_level_parse(optarg, &lvl) != 0) goto bad;
            ts_log_set_level(lvl);
            break;
        }
        case 'h': usage(stdout); return 0;
        case 'V': printf("tillstream-klaviyo-sim %s\n", TS_VERSION); return 0;
        default: goto bad;
        }
    }
    o.listen_host = host;
    /* SIGTERM/SIGINT are blocked in every thread (the server's threads
     * inherit the mask) and taken by sigwait() below. */
    sigset_t stop_sigs;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    char err[256];
    ts_sim_t *s = ts_sim_new(&o, err, sizeof err);
    if (!s) {
        fprintf(stderr, "tillstream-klaviyo-sim: %s\n", err);
        return 1;
    }
    for (int i = 0; i < n_accts; i++) {
        ts_sim_add_account(s, accts[i].name, accts[i].key);
        memset(accts[i].key, 0, strlen(accts[i].key));
        free(accts[i].key);
    }
    if (ts_sim_start(s, err, sizeof err) != TS_OK) {
        fprintf(stderr, "tillstream-klaviyo-sim: %s\n", err);
        ts_sim_destroy(s);
        return 1;
    }
    printf("listening on http://%s:%d\n", host, ts_sim_port(s));
    fflush(stdout);
    char ctx[160];
    snprintf(ctx, sizeof ctx, "\"port\":%d,\"accounts\":%d", ts_sim_port(s), n_accts);
    ts_log(TS_LOG_INFO, "klaviyo-sim", ctx, "listening on %s", host);
    if (port_file) {
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%d\n", ts_sim_port(s));
            fclose(f);
            rename(tmp, port_file);
        }
    }
    int sig = 0;
    sigwait(&stop_sigs, &sig); /* SIGTERM / SIGINT: stop cleanly, exit 0 */
    ts_log(TS_LOG_INFO, "klaviyo-sim", NULL, "stopping");
    ts_sim_destroy(s);
    return 0;
bad:
    usage(stderr);
    return 2;
}
