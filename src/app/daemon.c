/* daemon.c - a long-running binary's start (app/daemon.h). */
#include "app/daemon.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tillstream/log.h"

volatile int ts_app_stop;

static void on_signal(int sig) {
    (void)sig;
    ts_app_stop = 1;
}

void ts_app_daemon_start(const ts_config_t *cfg) {
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
}
