/* Checks of a CreateContainer request before anything is looked up,
 * copied or stored (create.c calls this first). A bad request gets EINVAL
 * naming the field. The size caps are the ones of server/validate.h, listed
 * in server/sandbox/README.md. */
#include <errno.h>
#include <string.h>

#include "server/container/container-internal.h"
#include "server/validate.h"

static int validate_envs(const Runtime__V1__ContainerConfig *cfg, cri_error_t *err)
{
    if (validate_count("config.envs", cfg->n_envs, VALIDATE_MAX_ENVS, err) < 0)
        return -1;
    size_t total = 0;
    for (size_t i = 0; i < cfg->n_envs; i++) {
        total += strlen(cfg->envs[i]->key) + cfg->envs[i]->value.len + 2; /* `=` and NUL */
        if (total > VALIDATE_MAX_ENV_BYTES)
            return cri_error_set(err, EINVAL, "config.envs: more than %zu bytes in total",
                                 VALIDATE_MAX_ENV_BYTES);
    }
    return 0;
}

static int validate_linux_sizes(const Runtime__V1__LinuxContainerConfig *lx, cri_error_t *err)
{
    if (!lx)
        return 0;
    const Runtime__V1__LinuxContainerResources *res = lx->resources;
    if (res && (validate_count("config.linux.resources.hugepage_limits", res->n_hugepage_limits,
                               VALIDATE_MAX_ENTRIES, err) < 0 ||
                validate_count("config.linux.resources.unified", res->n_unified,
                               VALIDATE_MAX_ENTRIES, err) < 0 ||
                validate_map("config.linux.resources.unified", (void *const *)res->unified,
                             res->n_unified, false, err) < 0))
        return -1;
    const Runtime__V1__LinuxContainerSecurityContext *sc = lx->security_context;
    if (!sc)
        return 0;
    const Runtime__V1__Capability *cap = sc->capabilities;
    if (cap && (validate_count("config.linux.security_context.capabilities.add_capabilities",
                               cap->n_add_capabilities, VALIDATE_MAX_ENTRIES, err) < 0 ||
                validate_count("config.linux.security_context.capabilities.drop_capabilities",
                               cap->n_drop_capabilities, VALIDATE_MAX_ENTRIES, err) < 0 ||
                validate_count("config.linux.security_context.capabilities."
                               "add_ambient_capabilities",
                               cap->n_add_ambient_capabilities, VALIDATE_MAX_ENTRIES, err) < 0))
        return -1;
    if (validate_count("config.linux.security_context.masked_paths", sc->n_masked_paths,
                       VALIDATE_MAX_ENTRIES, err) < 0 ||
        validate_count("config.linux.security_context.readonly_paths", sc->n_readonly_paths,
                       VALIDATE_MAX_ENTRIES, err) < 0 ||
        validate_count("config.linux.security_context.supplemental_groups",
                       sc->n_supplemental_groups, VALIDATE_MAX_GROUPS, err) < 0)
        return -1;
    return 0;
}

/* Sizes of every repeated field, before any other check looks at them. */
static int validate_sizes(const Runtime__V1__ContainerConfig *cfg, cri_error_t *err)
{
    if (validate_map("config.labels", (void *const *)cfg->labels, cfg->n_labels, true, err) < 0 ||
        validate_map("config.annotations", (void *const *)cfg->annotations, cfg->n_annotations,
                     true, err) < 0 ||
        validate_strv("config.command", cfg->command, cfg->n_command, VALIDATE_MAX_ARGV,
                      VALIDATE_MAX_ARGV_BYTES, err) < 0 ||
        validate_strv("config.args", cfg->args, cfg->n_args, VALIDATE_MAX_ARGV,
                      VALIDATE_MAX_ARGV_BYTES, err) < 0 ||
        validate_envs(cfg, err) < 0 ||
        validate_count("config.mounts", cfg->n_mounts, CONTAINER_MAX_MOUNTS, err) < 0 ||
        validate_count("config.devices", cfg->n_devices, VALIDATE_MAX_ENTRIES, err) < 0 ||
        validate_count("config.CDI_devices", cfg->n_cdi_devices, VALIDATE_MAX_ENTRIES, err) < 0)
        return -1;
    if (cfg->image &&
        validate_map("config.image.annotations", (void *const *)cfg->image->annotations,
                     cfg->image->n_annotations, false, err) < 0)
        return -1;
    return validate_linux_sizes(cfg->linux, err);
}

int container_validate_create(const Runtime__V1__CreateContainerRequest *r, cri_error_t *err)
{
    const Runtime__V1__ContainerConfig *cfg = r->config;
    if (!r->pod_sandbox_id[0])
        return cri_error_set(err, EINVAL, "pod_sandbox_id is empty");
    if (!cfg)
        return cri_error_set(err, EINVAL, "config is missing");
    if (validate_sizes(cfg, err) < 0)
        return -1;
    if (!cfg->metadata)
        return cri_error_set(err, EINVAL, "config.metadata is missing");
    /* part of the record name k8s_<name>_<pod>_<ns>_<uid>_<attempt> */
    if (validate_object_name("config.metadata.name", cfg->metadata->name, err) < 0)
        return -1;
    if (!cfg->image || !cfg->image->image[0])
        return cri_error_set(err, EINVAL, "config.image.image is empty");
    /* relative to the pod's log_directory; empty = no log file */
    if (cfg->log_path[0] && validate_rel_clean_path("config.log_path", cfg->log_path, err) < 0)
        return -1;
    if (container_validate_mounts(cfg, err) < 0)
        return cri_error_wrap(err, "config");
    const Runtime__V1__LinuxContainerSecurityContext *sc =
        cfg->linux ? cfg->linux->security_context : NULL;
    if (sc && sc->namespace_options &&
        validate_userns("config.linux.security_context.namespace_options.userns_options",
                        sc->namespace_options->userns_options, err) < 0)
        return -1;
    if (sc && sc->supplemental_groups_policy != RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Merge &&
        sc->supplemental_groups_policy != RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict)
        return cri_error_set(err, EINVAL,
                             "config.linux.security_context.supplemental_groups_policy: invalid "
                             "value %d",
                             (int)sc->supplemental_groups_policy);
    const char *apparmor = NULL;
    if (cfg->linux && container_apparmor(cfg->linux->security_context, container_apparmor_enabled(),
                                         &apparmor, err) < 0)
        return -1;
    /* privileged is checked against the stored pod in create.c, never
     * against the request's copy of the pod config */
    return 0;
}
