/*
 * tillstream-sandbox-kafka: librdkafka's in-process mock cluster, served
 * to other processes for the README's local sandbox. Not a broker for
 * volume, loss or replay-by-time tests (docs/sandbox.md, NOTES: ~5 MB per
 * partition, no offsets-for-times); the test command uses real Kafka.
 *
 *   tillstream-sandbox-kafka --topic pos.customers:3 --topic pos.orders:3 \
 *       --bootstrap-file FILE
 *
 * Prints the bootstrap address, writes it to FILE, and serves until
 * SIGTERM/SIGINT.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv) {
    const char *bootstrap_file = NULL;
    const char *topics[32];
    int n_topics = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--topic") && i + 1 < argc && n_topics < 32) {
            topics[n_topics++] = argv[++i];
        } else if (!strcmp(argv[i], "--bootstrap-file") && i + 1 < argc) {
            bootstrap_file = argv[++i];
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("Usage: tillstream-sandbox-kafka [--topic NAME:PARTITIONS]... "
                   "[--bootstrap-file FILE]\n"
                   "Runs librdkafka's mock cluster for the local sandbox until SIGTERM.\n");
            return 0;
        } else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("tillstream-sandbox-kafka %s (librdkafka %s)\n", TS_VERSION,
                   rd_kafka_version_str());
            return 0;
        } else {
            fprintf(stderr, "tillstream-sandbox-kafka: unknown argument %s (see --help)\n",
                    argv[i]);
            return 2;
        }
    }
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "tillstream-sandbox-kafka: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    if (!mc) {
        fprintf(stderr, "tillstream-sandbox-kafka: cannot create mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < n_topics; i++) {
        char name[256];
        int parts = 1;
        const char *colon = strrchr(topics[i], ':');
        size_t len = colon ? (size_t)(colon - topics[i]) : strlen(topics[i]);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, topics[i], len);
        name[len] = '\0';
        if (colon) parts = atoi(colon + 1);
        if (parts < 1) parts = 1;
        if (rd_kafka_mock_topic_create(mc, name, parts, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "tillstream-sandbox-kafka: cannot create topic %s\n", name);
        }
    }
    const char *bs = rd_kafka_mock_cluster_bootstraps(mc);
    if (bootstrap_file) {
        FILE *f = fopen(bootstrap_file, "w");
        if (!f) {
            fprintf(stderr, "tillstream-sandbox-kafka: cannot write %s\n", bootstrap_file);
        } else {
            fprintf(f, "%s\n", bs);
            fclose(f);
        }
    }
    printf("bootstrap %s\n", bs);
    fflush(stdout);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop) usleep(100 * 1000);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
