/* The image service: the contract of server/image/ for the rest of the
 * daemon (server/daemon.c, server/container/, server/sandbox/) and its
 * handlers.
 *
 * The service is three layers, each with its own header:
 *   registry/registry.h    references, digests, the registry client
 *   store/image_store.h    the image store (pulls, content, layers, records)
 *   this folder            the CRI handlers: protobuf-c <-> library types
 * Only the handler layer knows CRI messages. */
#ifndef CRICKET_SERVER_IMAGE_IMAGE_H
#define CRICKET_SERVER_IMAGE_IMAGE_H

#include "common/error.h"
#include "server/image/registry/registry.h"
#include "server/image/store/image_store.h"

struct Runtime__V1__PullImageRequest;
/* Checks a PullImage request before anything is fetched: image.image set
 * and a valid reference. Pure (no store), also run by test/fuzz/. EINVAL
 * naming the field. */
int image_validate_pull(const struct Runtime__V1__PullImageRequest *r, cri_error_t *err);

#endif
