/* CheckpointContainer, CheckpointPod, RestorePod: not supported. All three
 * would run CRIU (runc checkpoint / restore), and Debian 12's CRIU 3.17.1
 * fails on this kernel before it dumps anything ("vdso: Failed to fill self
 * vdso symtable"), so they answer UNIMPLEMENTED naming the method and that
 * reason, after checking nothing: kubelet and crictl show the message as
 * is. One file for the three, as they share that one answer. */
#include <errno.h>

#include "server/handlers.h"

#define CHECKPOINT_WHY                                                                    \
    "not supported: checkpoint/restore needs CRIU, and Debian 12's CRIU 3.17.1 fails on " \
    "this kernel (\"vdso: Failed to fill self vdso symtable\")"

RPC_HANDLER(handle_checkpoint_container)
{
    return cri_error_set(err, ENOSYS, "CheckpointContainer: %s", CHECKPOINT_WHY);
}

RPC_HANDLER(handle_checkpoint_pod)
{
    return cri_error_set(err, ENOSYS, "CheckpointPod: %s", CHECKPOINT_WHY);
}

RPC_HANDLER(handle_restore_pod)
{
    return cri_error_set(err, ENOSYS, "RestorePod: %s", CHECKPOINT_WHY);
}
