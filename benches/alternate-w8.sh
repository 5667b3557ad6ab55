#!/usr/bin/env bash
# A/B of the W8 workloads: one bench binary run alternately with another
# library (LD_LIBRARY_PATH=BEFORE_DIR, a directory holding that build's
# libtornado_rs.so and a libtornado_rs.so.0 link to it: the binary needs
# the SONAME) and with its own, against the anchors' nginx and a CA made
# as run_anchors.sh makes it. Ports 8089-8094 must be free.
#   benches/alternate-w8.sh c_examples/build/bench /tmp/old-lib [PAIRS]
# PAIRS (default 6) for W8-tls13; W8-tls12 gets 2.
set -u
HERE=${ANCHORS:-$(dirname "$0")/../../shared/bench/anchors}
BENCH=$1; BEFORE=$2; PAIRS=${3:-6}
WORK=$(mktemp -d -t tls_ab.XXXXXX); chmod 755 "$WORK"
mkdir -p "$WORK/www" "$WORK/tmp" "$WORK/logs" "$WORK/tls"
head -c 200 /dev/zero | tr '\0' 's' >"$WORK/www/small"
head -c 1048576 /dev/zero | tr '\0' 'b' >"$WORK/www/big"
head -c 10485760 /dev/zero | tr '\0' 'B' >"$WORK/www/big10m"
d=$WORK/tls
cat >"$d/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = tornado_rs bench
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
CNF
{ openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" &&
  openssl req -config "$d/openssl.cnf" -new -x509 -key "$d/ca.key" -sha256 -days 2 -subj "/CN=tornado_rs bench CA" -extensions v3_ca -out "$d/ca.crt" &&
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/server.key" &&
  openssl req -config "$d/openssl.cnf" -new -key "$d/server.key" -subj "/CN=127.0.0.1" -out "$d/server.csr" &&
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -set_serial "0x$(openssl rand -hex 8)" -sha256 -days 2 -extfile "$d/openssl.cnf" -extensions v3_server -out "$d/server.crt"; } >"$WORK/logs/openssl.out" 2>&1 || exit 1
export BENCH_CA_FILE=$d/ca.crt
cp "$HERE/nginx.conf" "$WORK/nginx.conf"
nginx -p "$WORK/" -c "$WORK/nginx.conf" -e "$WORK/error.log" </dev/null >"$WORK/logs/nginx.out" 2>&1 &
NGINX_PID=$!
trap 'kill -TERM $NGINX_PID; wait $NGINX_PID; rm -rf "$WORK"' EXIT
for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8093) 2>/dev/null && break; sleep 0.1; done
for w in "W8-tls12 https://127.0.0.1:8092/small" "W8-tls13 https://127.0.0.1:8093/small"; do
  set -- $w
  n=$PAIRS; [ $1 = W8-tls12 ] && n=2
  for p in $(seq "$n"); do
    echo "before $(LD_LIBRARY_PATH=$BEFORE "$BENCH" $1 $2)"
    echo "after $("$BENCH" $1 $2)"
  done
done
