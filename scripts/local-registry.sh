# Sourced by the demos and the benchmark: start_registry DIR HOST:PORT starts a CNCF
# distribution registry on loopback with its storage under DIR, waits until /v2/ answers, and
# sets REGISTRY_PID. The caller stops it (kill "$REGISTRY_PID") in its own EXIT trap.
start_registry() {
  local dir="$1" addr="$2"
  cat > "$dir/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $dir/storage}
  delete: {enabled: true}
http:
  addr: $addr
YAML
  docker-registry serve "$dir/registry.yml" > "$dir/registry.log" 2>&1 &
  REGISTRY_PID=$!
  local _
  for _ in $(seq 100); do
    curl -fs "http://$addr/v2/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "error: the registry on $addr did not start; see $dir/registry.log" >&2
  return 1
}
