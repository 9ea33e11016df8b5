"""sluice's Python environment bootstrap for python jobs with requirements.

    python sluice_pyenv.py --cache DIR [--requirement REQ]... -- COMMAND...

Finds or makes the virtual environment of these requirements and this Python (the key is the
SHA-256 of the interpreter's version and path and the sorted requirements) under DIR, then runs
COMMAND in its place with the environment's python as `@python` in COMMAND, PYSPARK_PYTHON and
PYSPARK_DRIVER_PYTHON. An environment is made once: built in a temporary directory next to it and
renamed into place when complete, so concurrent runs never see half an environment (the loser of
a race drops its copy and uses the winner's).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

DONE = ".sluice-complete"


def main():
    args = sys.argv[1:]
    if "--" not in args:
        print("usage: sluice_pyenv.py --cache DIR [--requirement REQ]... -- COMMAND...", file=sys.stderr)
        sys.exit(2)
    sep = args.index("--")
    opts, command = args[:sep], args[sep + 1:]
    cache = opts[opts.index("--cache") + 1]
    reqs = [opts[i + 1] for i, a in enumerate(opts) if a == "--requirement"]
    key_text = json.dumps(
        {
            "python": sys.version,
            "executable": os.path.realpath(sys.executable),
            "requirements": sorted(reqs),
        },
        sort_keys=True,
    )
    key = hashlib.sha256(key_text.encode()).hexdigest()[:32]
    venv = os.path.join(cache, key)
    if os.path.exists(os.path.join(venv, DONE)):
        print(f"sluice: using the virtual environment {venv}", flush=True)
    else:
        os.makedirs(cache, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=key + ".tmp-", dir=cache)
        print(f"sluice: making the virtual environment {venv} for {reqs}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", tmp], check=True)
        subprocess.run(
            [os.path.join(tmp, "bin", "python"), "-m", "pip", "install",
             "--disable-pip-version-check", "--no-input", *reqs],
            check=True,
        )
        with open(os.path.join(tmp, "requirements.json"), "w", encoding="utf-8") as f:
            f.write(key_text)
        open(os.path.join(tmp, DONE), "w").close()
        try:
            os.rename(tmp, venv)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not os.path.exists(os.path.join(venv, DONE)):
                raise
            print(f"sluice: another run made {venv} first; using it", flush=True)
    python = os.path.join(venv, "bin", "python")
    env = dict(os.environ)
    env["PYSPARK_PYTHON"] = python
    env["PYSPARK_DRIVER_PYTHON"] = python
    env["SLUICE_VENV"] = venv
    command = [python if a == "@python" else a for a in command]
    sys.stdout.flush()
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
