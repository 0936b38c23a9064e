/* CNI: network configuration discovery and plugin invocation.
 *
 * Today this holds config discovery (what Status's NetworkReady reports);
 * plugin invocation joins it with the sandbox work. */
#ifndef CRICKET_CNI_CNI_H
#define CRICKET_CNI_CNI_H

#include "common/error.h"

/* Finds the network config cricket would use: the file in conf_dir whose
 * name ends in .conflist, .conf or .json and that parses as a CNI config
 * (a conflist with a non-empty "plugins" array, or a single config with a
 * "type"), first in lexical order; or, when want_name is non-empty, the
 * first valid one whose "name" equals want_name. Invalid files are skipped.
 * *ret_path gets a malloc'd path (caller frees) and *ret_name, when not
 * NULL, the network name. ENOENT when none fits (message says why). */
int cni_find_config(const char *conf_dir, const char *want_name, char **ret_path, char **ret_name,
                    cri_error_t *err);

#endif
