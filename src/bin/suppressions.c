/* tillstream-suppressions: Klaviyo's suppressions -> Kafka (docs/consent.md). */
#include "tillstream/suppressions.h"

int main(int argc, char **argv) { return ts_suppressions_main(argc, argv); }
