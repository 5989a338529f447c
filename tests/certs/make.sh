#!/bin/sh
# make.sh - regenerate the unit tests' TLS material with certtool
# (gnutls-bin).  Run from anywhere; writes next to this script.
#
#   ca.pem / ca.key          test CA ("websocksy test CA")
#   localhost.pem / .key     server, dNSName localhost, chain: leaf + CA
#   other.pem / .key         server, dNSName other.test (SNI tests)
#   client.pem / .key        client certificate signed by the CA
#   rogue.pem / .key         client certificate from a look-alike CA
#
# Everything is valid for 20 years; keys are ECDSA P-256.
set -eu
cd "$(dirname "$0")"
command -v certtool >/dev/null || { echo "certtool missing: apt-get install gnutls-bin" >&2; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

key() {
	certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 \
	    --no-text --outfile="$1" 2>/dev/null
}

cat > "$T/ca.tmpl" <<T
cn = "websocksy test CA"
organization = "websocksy tests"
serial = 1
expiration_days = 7300
ca
cert_signing_key
crl_signing_key
T
key ca.key
certtool --generate-self-signed --load-privkey=ca.key \
    --template="$T/ca.tmpl" --no-text --outfile=ca.pem 2>/dev/null

server() {	# name file serial
	cat > "$T/$2.tmpl" <<T
cn = "$1"
organization = "websocksy tests"
serial = $3
expiration_days = 7300
dns_name = "$1"
tls_www_server
signing_key
T
	key "$2.key"
	certtool --generate-certificate --load-privkey="$2.key" \
	    --load-ca-certificate=ca.pem --load-ca-privkey=ca.key \
	    --template="$T/$2.tmpl" --no-text --outfile="$T/$2.leaf" 2>/dev/null
	# Serve the chain (leaf first) so chain loading is exercised.
	cat "$T/$2.leaf" ca.pem > "$2.pem"
}
server localhost localhost 2
server other.test other 3

cat > "$T/client.tmpl" <<T
cn = "websocksy test client"
organization = "websocksy tests"
serial = 4
expiration_days = 7300
tls_www_client
signing_key
T
key client.key
certtool --generate-certificate --load-privkey=client.key \
    --load-ca-certificate=ca.pem --load-ca-privkey=ca.key \
    --template="$T/client.tmpl" --no-text --outfile=client.pem 2>/dev/null

# rogue: a look-alike CA (same name, other key) signs a client
# certificate, so a client picks it for our CA yet it must not verify.
key "$T/fake-ca.key"
certtool --generate-self-signed --load-privkey="$T/fake-ca.key" \
    --template="$T/ca.tmpl" --no-text --outfile="$T/fake-ca.pem" 2>/dev/null
sed 's/websocksy test client/rogue client/' "$T/client.tmpl" > "$T/rogue.tmpl"
key rogue.key
certtool --generate-certificate --load-privkey=rogue.key \
    --load-ca-certificate="$T/fake-ca.pem" --load-ca-privkey="$T/fake-ca.key" \
    --template="$T/rogue.tmpl" --no-text --outfile=rogue.pem 2>/dev/null

chmod 644 *.key	# test-only keys; tests may run as another user
echo "test certificates written to $(pwd)"
