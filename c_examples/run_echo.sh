#!/usr/bin/env bash
# Runs echo_server and echo_client against each other: plain, then TLS with
# a throw-away CA and certificate made by openssl. Usage:
#   run_echo.sh BUILD_DIR [WRAPPER...]   (WRAPPER: e.g. valgrind and its options)
set -euo pipefail
build=$1
shift
wrap=("$@")
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Starts echo_server (with extra arguments) and sets $port.
start_server() {
    "${wrap[@]}" "$build/echo_server" --once "$@" >"$work/server.out" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        port=$(sed -n 's/^PORT //p' "$work/server.out")
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    cat "$work/server.out" >&2
    return 1
}

finish_server() {
    wait "$server_pid"
    server_pid=
}

start_server
"${wrap[@]}" "$build/echo_client" 127.0.0.1 "$port" hello "line two"
finish_server

if command -v openssl >/dev/null; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=test CA" \
        -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$work/key.pem" -out "$work/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/ext.cnf"
    openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
        -CAcreateserial -days 2 -extfile "$work/ext.cnf" -out "$work/cert.pem" 2>/dev/null
    start_server --tls "$work/cert.pem" "$work/key.pem"
    "${wrap[@]}" "$build/echo_client" localhost "$port" --tls "$work/ca.pem" "over TLS" "second"
    finish_server
else
    echo "openssl not found: TLS echo skipped" >&2
    exit 1
fi
echo "echo pair: plain and TLS OK"
