/* Private to cni/: the parsed network and the plugin runner. */
#ifndef CRICKET_CNI_INTERNAL_H
#define CRICKET_CNI_INTERNAL_H

#include <stdbool.h>

#include <jansson.h>

#include "cni/cni.h"

struct cni_network {
    char *name;
    char *version;
    json_t *plugins; /* array of plugin objects (owned) */
};

/* Builds a network from an already parsed conflist object (steals nothing;
 * copies what it keeps). */
int cni_network_from_json(json_t *root, const char *origin, cni_network_t **ret, cri_error_t *err);
/* The conflist object for the cache ({"cniVersion","name","plugins"}). */
json_t *cni_network_to_json(const cni_network_t *net);

/* Capability arguments an attachment carries, keyed by capability name
 * (portMappings, bandwidth, dns, cgroupPath). New reference. */
json_t *cni_capability_args(const cni_attachment_t *att);

typedef enum cni_command { CNI_ADD, CNI_DEL, CNI_CHECK } cni_command_t;

/* Runs one plugin of net (index i) for cmd, with prev (may be NULL) as
 * prevResult and cap_args filtered by the plugin's declared capabilities.
 * *ret_result (ADD only; may be NULL) gets the parsed stdout. */
int cni_exec_plugin(const cni_opts_t *opts, const cni_network_t *net, size_t i, cni_command_t cmd,
                    const cni_attachment_t *att, json_t *cap_args, json_t *prev,
                    json_t **ret_result, cri_error_t *err);

/* True when version (e.g. "0.4.0") is at least major.minor. */
bool cni_version_at_least(const char *version, int major, int minor);

#endif
