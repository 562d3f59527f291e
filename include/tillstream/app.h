/*
 * tillstream/app.h - the shared command line and run loop behind the thin
 * mains of tillstream-customers and tillstream-orders.
 *
 *   tillstream-orders --config FILE [--dry-run [--input FILE] [--customers FILE]]
 *                     [--exit-at-end] [--help] [--help-config] [--version]
 *
 * Returns the process exit code: 0 ok, 1 runtime failure, 2 bad config or
 * usage. Only main() turns it into an exit.
 */
#ifndef TILLSTREAM_APP_H
#define TILLSTREAM_APP_H

#include "tillstream/decode.h"

#ifdef __cplusplus
extern "C" {
#endif

int ts_app_main(ts_kind_t kind, int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
