/*
 * app/daemon.h - how a long-running binary starts (private to src/app):
 * the consumers' live mode (app.c) and tillstream-suppressions.
 */
#ifndef TILLSTREAM_APP_DAEMON_H
#define TILLSTREAM_APP_DAEMON_H

#include "tillstream/config.h"

/* 1 once SIGTERM or SIGINT arrived after ts_app_daemon_start(). */
extern volatile int ts_app_stop;

/* The config's log.level (info when it does not parse) with log lines on
 * stdout, SIGTERM and SIGINT setting ts_app_stop, SIGPIPE ignored. */
void ts_app_daemon_start(const ts_config_t *cfg);

#endif
