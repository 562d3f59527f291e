/* tillstream-customers: POS customers -> Klaviyo profiles and consent. */
#include "tillstream/app.h"

int main(int argc, char **argv) { return ts_app_main(TS_KIND_CUSTOMER, argc, argv); }
