#!/usr/bin/env bash
# Remakes the seed inputs of corpus/jws, corpus/jwk, corpus/csr, corpus/csr_signed,
# corpus/certificate, corpus/crl, corpus/caa, corpus/plugin_answers and corpus/upki_wire with
# the real client libraries: certbot's ACME/JOSE code
# (Debian's python3-acme, python3-josepy) signs the request bodies, openssl makes the CSRs and
# Python's cryptography the certificates and CRLs. corpus/config holds the file
# `acmegate init` writes and documented configurations (one followed by a NUL and environment
# variables, as the config target reads them); corpus/identifiers is written by hand.
# Not run by CI: the seeds are committed.
set -euo pipefail
cd "$(dirname "$0")/corpus"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 - <<'PY'
import base64, json
import josepy
from acme import jws
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def write(path, data):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

base = "https://gw.example/acme"
keys = {
    "es256": (josepy.JWKEC(key=ec.generate_private_key(ec.SECP256R1())), josepy.ES256),
    "es384": (josepy.JWKEC(key=ec.generate_private_key(ec.SECP384R1())), josepy.ES384),
    "rs256": (josepy.JWKRSA(key=rsa.generate_private_key(65537, 2048)), josepy.RS256),
}
for name, (key, alg) in keys.items():
    public = key.public_key()
    write(f"jwk/{name}.json", json.dumps(public.to_partial_json()))
    # newAccount with the key in "jwk" and an externalAccountBinding (RFC 8555 §7.3.4).
    eab = jws.JWS.sign(json.dumps(public.to_partial_json()).encode(),
                       key=josepy.JWKOct(key=b"fuzz-eab-hmac-key"), alg=josepy.HS256,
                       nonce=None, url=f"{base}/new-account", kid="kid-1")
    payload = {"termsOfServiceAgreed": True, "contact": ["mailto:admin@example.com"],
               "externalAccountBinding": eab.to_partial_json()}
    body = jws.JWS.sign(json.dumps(payload).encode(), key=key, alg=alg, nonce=b"nonce-1",
                        url=f"{base}/new-account")
    write(f"jws/new-account-{name}.json", body.json_dumps())
# Requests by an account ("kid"): newOrder, POST-as-GET, finalize.
key, alg = keys["es256"]
kid = f"{base}/account/acct-1"
order = {"identifiers": [{"type": "dns", "value": "a.example"}, {"type": "ip", "value": "10.0.0.1"}]}
for name, payload in [("new-order", json.dumps(order).encode()), ("post-as-get", b""),
                      ("finalize", json.dumps({"csr": "MIIB"}).encode())]:
    body = jws.JWS.sign(payload, key=key, alg=alg, nonce=b"nonce-2", url=f"{base}/{name}", kid=kid)
    write(f"jws/{name}.json", body.json_dumps())
ed = ed25519.Ed25519PrivateKey.generate().public_key()
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
raw = ed.public_bytes(Encoding.Raw, PublicFormat.Raw)
write("jwk/ed25519.json", json.dumps({"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}))
p521 = ec.generate_private_key(ec.SECP521R1()).public_key().public_numbers()
write("jwk/p521.json", json.dumps({"kty": "EC", "crv": "P-521",
                                   "x": b64(p521.x.to_bytes(66, "big")),
                                   "y": b64(p521.y.to_bytes(66, "big"))}))
PY

# CSRs for the order the csr targets check against: a.example and 10.0.0.1.
names="subjectAltName=DNS:a.example,IP:10.0.0.1"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
  -subj /CN=a.example -addext "$names" -outform DER -out csr/p256.der 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout /dev/null \
  -subj /CN=a.example -addext "$names" -outform DER -out csr/rsa2048.der 2>/dev/null
openssl req -new -newkey ed25519 -nodes -keyout /dev/null \
  -subj /CN=10.0.0.1 -addext "$names" -addext basicConstraints=critical,CA:FALSE \
  -outform DER -out csr/ed25519.der 2>/dev/null
# csr_signed: the CertificationRequestInfo of CSRs made with the harness's fixed Ed25519 key
# (acmegate_fuzz::SIGNING_SEED, 32 bytes of 7), the first element of the request.
printf '302e020100300506032b657004220420%s' "$(printf '07%.0s' $(seq 32))" | xxd -r -p \
  | openssl pkey -inform DER -out "$work/fixed.pem"
info() { # out subject extension...
  local out="$1" subj="$2"; shift 2
  local ext=(); for e in "$@"; do ext+=(-addext "$e"); done
  openssl req -new -key "$work/fixed.pem" -subj "$subj" "${ext[@]}" -outform DER -out "$work/req.der"
  /usr/bin/python3 -c '
import sys
der = open(sys.argv[1], "rb").read()
# The outer SEQUENCE header, then the first element (tag, length, content).
def header(b, at):
    n = b[at + 1]
    return (2, n) if n < 0x80 else (2 + (n & 0x7f), int.from_bytes(b[at + 2:at + 2 + (n & 0x7f)], "big"))
h, _ = header(der, 0)
ih, il = header(der, h)
open(sys.argv[2], "wb").write(der[h:h + ih + il])' "$work/req.der" "$out"
}
info csr_signed/names.der /CN=a.example "$names"
info csr_signed/ip-cn.der /CN=10.0.0.1 "$names" basicConstraints=critical,CA:FALSE
info csr_signed/ca-true.der /CN=a.example "$names" basicConstraints=critical,CA:TRUE
info csr_signed/other-san.der /O=Example "subjectAltName=DNS:a.example,email:a@example.com"

# corpus/certificate and corpus/crl: leaves of each key type with SANs, AKI and EKU, and a CRL
# with a CRL Number, AKI and reason codes, made with Python's cryptography (Debian's
# python3-cryptography); corpus/crl/upki-ca-0.1.5.der is the real uPKI CA's CRL.
cp ../../../plugins/upki-wire/testdata/upki-ca-0.1.5-crl.der crl/upki-ca-0.1.5.der
/usr/bin/python3 - <<'PY'
import datetime, ipaddress
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, ed25519

now = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
ca_key = ec.generate_private_key(ec.SECP256R1())
ca_name = x509.Name([
    x509.NameAttribute(NameOID.COMMON_NAME, "fuzz CA"),
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ops"),
])
aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
keys = [
    ("p256", ec.generate_private_key(ec.SECP256R1())),
    ("rsa2048", rsa.generate_private_key(65537, 2048)),
    ("ed25519", ed25519.Ed25519PrivateKey.generate()),
]
for name, key in keys:
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("a.example"), x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]), False)
        .add_extension(aki, False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    open(f"certificate/{name}.der", "wb").write(cert.public_bytes(serialization.Encoding.DER))
crl = (
    x509.CertificateRevocationListBuilder()
    .issuer_name(ca_name)
    .last_update(now)
    .next_update(now + datetime.timedelta(days=1))
    .add_extension(x509.CRLNumber(7), False)
    .add_extension(aki, False)
)
for i, reason in enumerate([x509.ReasonFlags.key_compromise, x509.ReasonFlags.superseded]):
    crl = crl.add_revoked_certificate(
        x509.RevokedCertificateBuilder()
        .serial_number(1000 + i)
        .revocation_date(now)
        .add_extension(x509.CRLReason(reason), False)
        .build()
    )
open("crl/reasons-and-number.der", "wb").write(
    crl.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
PY

# corpus/caa: DNS responses carrying CAA RRsets, written by dnspython (Debian's
# python3-dnspython): issue/issuewild with RFC 8657 parameters, iodef, a critical unknown tag,
# the "no CA" value and malformed values.
mkdir -p caa plugin_answers upki_wire
/usr/bin/python3 - <<'PY'
import dns.message, dns.rrset
sets = {
    "issue-params": ['0 issue "ca.example; accounturi=https://gw.example/acme/account/acct-1; validationmethods=dns-01,http-01"'],
    "issuewild": ['0 issue "other.ca"', '0 issuewild "ca.example"', '0 iodef "mailto:sec@example.com"'],
    "critical-unknown": ['128 tbs "unknown"', '0 issue "ca.example"'],
    "no-ca": ['0 issue ";"'],
    "malformed": ['0 issue "ca.example; =x"', '0 issue "ca..example"', '0 IssueWild "acmegate.internal;a=b;a=c"'],
}
for name, records in sets.items():
    query = dns.message.make_query("www.a.example.", "CAA")
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text_list("www.a.example.", 300, "IN", "CAA", records))
    open(f"caa/{name}.bin", "wb").write(response.to_wire())
PY

# corpus/plugin_answers: byte 0 then an issuer's chain (certificates for the harness's fixed
# Ed25519 key, acmegate_fuzz::SIGNING_SEED, by Python's cryptography: the order's names, other
# names, and another key), byte 1 then an HTTP capability URL, byte 2 then a log line.
/usr/bin/python3 - <<'PY'
import datetime, ipaddress
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

now = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
ca_key = ec.generate_private_key(ec.SECP256R1())
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz issuer")])
fixed = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))
def cert(key, names):
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName(names), False)
            .sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
order = [x509.DNSName("a.example"), x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]
ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
      .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now)
      .not_valid_after(now + datetime.timedelta(days=365))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
      .sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
chains = {
    "chain-ok": cert(fixed, order) + ca,
    "chain-other-names": cert(fixed, [x509.DNSName("b.example")]),
    "chain-other-key": cert(ec.generate_private_key(ec.SECP256R1()), order),
}
for name, pem in chains.items():
    open(f"plugin_answers/{name}", "wb").write(b"\x00" + pem)
urls = {"url-ok": "https://api.example/v1/certs", "url-zone": "https://a.b.svc.example:8443/x?y=1",
        "url-userinfo": "https://api.example@evil.example/", "url-plain": "http://api.example/",
        "url-ip": "https://[::1]/"}
for name, url in urls.items():
    open(f"plugin_answers/{name}", "wb").write(b"\x01" + url.encode())
open("plugin_answers/log-forged", "wb").write(b"\x02" + "done\n2026-12-01 INFO forged\r\t\u00e9".encode())
PY

# corpus/upki_wire: byte 0 then a reply frame in the shapes upki-ca 0.1.5 answers (view, sign,
# an error; the fields docs/upki.md lists), byte 1 then DER: the real CA's CRL, a certificate
# and a request of the other corpora.
/usr/bin/python3 - <<'PY'
import json
frames = {
    "view": {"EVENT": "ANSWER", "DATA": {"subject": "/CN=a.example", "issuer": "/CN=uPKI CA",
             "serial_number": 730750818665451459101842416358141509827966271488,
             "extensions": {"keyUsage": "digitalSignature"}, "is_revoked": False}},
    "sign": {"EVENT": "ANSWER", "DATA": {"certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}},
    "error": {"EVENT": "UPKI ERROR", "MSG": "[300] CSR has no Common Name"},
    # The defect found by writing this target's invariant: a nested `serial_number` (and one
    # inside a string) was read as the certificate's (upki-wire protocol tests).
    "view-nested": {"EVENT": "ANSWER", "DATA": {"issuer": {"serial_number": 1, "note": '"serial_number": 2'},
                    "serial_number": 3}},
}
for name, frame in frames.items():
    open(f"upki_wire/{name}", "wb").write(b"\x00" + json.dumps(frame).encode())
PY
{ printf '\001'; cat crl/upki-ca-0.1.5.der; } > upki_wire/crl-upki-ca
{ printf '\001'; cat csr/p256.der; } > upki_wire/csr-p256
{ printf '\001'; cat certificate/p256.der; } > upki_wire/certificate-p256
