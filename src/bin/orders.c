/* tillstream-orders: POS orders -> Klaviyo events, routed by Home Outlet. */
#include "tillstream/app.h"

int main(int argc, char **argv) { return ts_app_main(TS_KIND_ORDER, argc, argv); }
