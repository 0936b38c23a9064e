#!/bin/bash
# Layering rules of server/ (STYLE.md sections 1 and 4), checked on the
# source tree given as $1 (default: this checkout):
#  - <grpc/...> is included by server/rpc.c only, and that gRPC core knows
#    no CRI message and no handler (the method table is rpc_methods.c, the
#    reply builders rpc_reply.c);
#  - the libraries inside the service folders know no CRI message: no
#    api.pb-c.h, no protobuf-c type or function, no rpc.h;
#  - dependencies point one way: registry <- store <- handlers, and
#    server/container may know pods but server/sandbox knows no container.
# Exit 0 when the tree follows them, 1 with one line per violation if not.
set -u
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2
fail=0
violation() {
    echo "layering: $*" >&2
    fail=1
}

libs=(server/image/registry server/image/store)
[ -d server/streaming/proto ] && libs+=(server/streaming/proto)
for d in "${libs[@]}"; do
    [ -d "$d" ] || violation "library folder $d is missing"
done

while IFS= read -r hit; do
    violation "$hit: only server/rpc.c includes <grpc/...>"
done < <(grep -rnE '#[[:space:]]*include[[:space:]]*<grpc/' --include='*.c' --include='*.h' \
    common conf oci cni conmon server 2>/dev/null | grep -v '^server/rpc\.c:')

while IFS= read -r hit; do
    violation "server/rpc.c:$hit: the gRPC core must not know CRI messages or handlers"
done < <(grep -nE '#[[:space:]]*include[[:space:]]*"(api/cri/v1/api\.pb-c\.h|server/handlers\.h)"' server/rpc.c)

for d in "${libs[@]}"; do
    [ -d "$d" ] || continue
    while IFS= read -r hit; do
        violation "$hit: a library must not use protobuf-c or the RPC layer"
    done < <(grep -rnE 'api\.pb-c\.h|protobuf-c/|ProtobufC|Runtime__V1|runtime__v1__|server/rpc\.h|rpc_ctx' \
        --include='*.c' --include='*.h' "$d")
done

up() { # folder, forbidden include pattern, why
    [ -d "$1" ] || return 0
    while IFS= read -r hit; do
        violation "$hit: $3"
    done < <(grep -rnE "#[[:space:]]*include[[:space:]]*\"($2)\"" --include='*.c' --include='*.h' "$1")
}
up server/image/registry 'server/image/(store/[^"]*|image\.h|image-internal\.h)' \
    'the registry library must not include the store or the handlers'
up server/image/store 'server/image/(image\.h|image-internal\.h)' \
    'the store library must not include the handlers'
up server/sandbox 'server/container/[^"]*' \
    'the sandbox module must not include container headers (daemon.c registers hooks instead)'
up server/streaming/proto 'server/streaming/(streaming\.h|streaming-internal\.h|session-internal\.h)' \
    'the streaming protocol core must not include the service'

exit $fail
