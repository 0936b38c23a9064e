/* Checks of a CreateContainer request before anything is looked up,
 * copied or stored (create.c calls this first). A bad request gets EINVAL
 * naming the field. */
#include <errno.h>
#include <string.h>

#include "server/container/container-internal.h"

int container_validate_create(const Runtime__V1__CreateContainerRequest *r, cri_error_t *err)
{
    const Runtime__V1__ContainerConfig *cfg = r->config;
    if (!r->pod_sandbox_id[0])
        return cri_error_set(err, EINVAL, "pod_sandbox_id is empty");
    if (!cfg)
        return cri_error_set(err, EINVAL, "config is missing");
    if (!cfg->metadata || !cfg->metadata->name[0])
        return cri_error_set(err, EINVAL, "config.metadata.name is empty");
    if (strchr(cfg->metadata->name, '_') || strchr(cfg->metadata->name, '/'))
        return cri_error_set(err, EINVAL, "config.metadata.name `%s` has `_` or `/`",
                             cfg->metadata->name);
    if (!cfg->image || !cfg->image->image[0])
        return cri_error_set(err, EINVAL, "config.image.image is empty");
    if (strstr(cfg->log_path, ".."))
        return cri_error_set(err, EINVAL, "config.log_path `%s` has `..`", cfg->log_path);
    if (container_validate_mounts(cfg, err) < 0)
        return cri_error_wrap(err, "config");
    bool priv =
        cfg->linux && cfg->linux->security_context && cfg->linux->security_context->privileged;
    const Runtime__V1__PodSandboxConfig *sc = r->sandbox_config;
    bool pod_priv =
        sc && sc->linux && sc->linux->security_context && sc->linux->security_context->privileged;
    if (priv && !pod_priv)
        return cri_error_set(err, EINVAL, "no privileged container allowed in sandbox");
    return 0;
}
