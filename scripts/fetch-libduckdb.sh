#!/usr/bin/env bash
# Puts the official prebuilt libduckdb.so 1.5.5 (and its LICENSE) into DEST, once:
#
#   scripts/fetch-libduckdb.sh DEST [DOWNLOAD_DIR]
#
# DuckDB's Node.js client ships that library in a per-platform npm package,
# @duckdb/node-bindings-linux-<x64|arm64>. Its tarball is checked against the sha512 the npm
# registry publishes for it (its "integrity"), pinned here, so the library is exactly that
# release; the tarball is kept in DOWNLOAD_DIR (default: DEST's parent). Needs only bash and
# Python 3, so scripts/setup.sh and docker/Dockerfile both use it. Exits 1, saying why, when
# there is no such library for this machine or it cannot be fetched; npm_config_registry
# points it at a mirror.
set -euo pipefail
DEST=${1:?usage: fetch-libduckdb.sh DEST [DOWNLOAD_DIR]}
DOWNLOADS=${2:-$(dirname "$DEST")}
NPM_VERSION=1.5.5-r.5

say() { printf 'fetch-libduckdb: %s\n' "$*" >&2; }

[ -f "$DEST/libduckdb.so" ] && exit 0
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64)
    arch=x64
    sha512=902caae815e19fa4177f017cc957552ab8924873feadf556709e7a706f2a67394e669c72bd3e561a6ea332c871838762b4b94eb07b0837f0f8ed162b7235ee1d ;;
  Linux-aarch64)
    arch=arm64
    sha512=09a7c7d8022f5eda700f29c6dca07fe2e10e1d11a516807b6ae091308c07dc128d2286ec00d5792d2a43277b5fc9108522c2ba7bc013d5eb1e5959eed83bf773 ;;
  *) say "no prebuilt libduckdb for $(uname -s) $(uname -m)"; exit 1 ;;
esac
if ! getconf GNU_LIBC_VERSION >/dev/null 2>&1; then
  say "the prebuilt libduckdb needs glibc, which this machine does not use"; exit 1
fi
name=node-bindings-linux-$arch-$NPM_VERSION.tgz
registry=${npm_config_registry:-https://registry.npmjs.org/}
mkdir -p "$DOWNLOADS" "$(dirname "$DEST")"
say "fetching the prebuilt libduckdb 1.5.5 (@duckdb/node-bindings-linux-$arch@$NPM_VERSION, 24 MB)"
exec python3 - "${registry%/}/@duckdb/node-bindings-linux-$arch/-/$name" "$DOWNLOADS/$name" "$sha512" "$DEST" <<'PY'
import hashlib, os, shutil, sys, tarfile, tempfile, urllib.request
url, tgz, sha512, dest = sys.argv[1:]
def fail(why):
    print(f"fetch-libduckdb: {why}", file=sys.stderr)
    sys.exit(1)
if not os.path.exists(tgz):
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tgz + ".tmp", "wb") as f:
            shutil.copyfileobj(r, f)
    except OSError as e:
        fail(f"cannot download {url}: {e}")
    os.replace(tgz + ".tmp", tgz)
digest = hashlib.sha512()
with open(tgz, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
if digest.hexdigest() != sha512:
    os.remove(tgz)
    fail(f"{tgz} (from {url}) has sha512 {digest.hexdigest()}, not the pinned {sha512}; "
         "removed, so the next run downloads it again")
# Extracted beside DEST and renamed into place: the library appears whole or not at all.
tmp = tempfile.mkdtemp(prefix=".libduckdb-", dir=os.path.dirname(os.path.abspath(dest)))
with tarfile.open(tgz) as t:
    for member in ("libduckdb.so", "LICENSE"):
        src = t.extractfile(f"package/{member}")
        if src is None:
            fail(f"{tgz} holds no package/{member}")
        with open(os.path.join(tmp, member), "wb") as out:
            shutil.copyfileobj(src, out)
os.chmod(tmp, 0o755)
shutil.rmtree(dest, ignore_errors=True)
os.replace(tmp, dest)
PY
