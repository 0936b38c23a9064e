/* jansson helpers shared by every module that speaks JSON (OCI specs, CNI,
 * the monitor's protocol, registries, records). Header-only: users link
 * jansson themselves. */
#ifndef CRICKET_COMMON_JSON_H
#define CRICKET_COMMON_JSON_H

#include <jansson.h>

/* A json_t local released at scope exit (NULL is fine). */
#define cleanup_json __attribute__((cleanup(json_decrefp)))

#endif
