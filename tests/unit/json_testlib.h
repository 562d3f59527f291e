/*
 * json_testlib.h - reading the JSON the code under test wrote, for the unit
 * tests that parse it back with cJSON (map, sim). Test-only; header-only.
 */
#ifndef TS_JSON_TESTLIB_H
#define TS_JSON_TESTLIB_H

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

/* The string at `path` ("a.b.c": object members) below o; NULL when a
 * member is missing or the value is not a string. Paths up to 255 bytes. */
static inline const char *tj_str(const cJSON *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cJSON_IsString(cur) ? cur->valuestring : NULL;
}

#endif
