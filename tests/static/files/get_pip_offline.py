# Local stand-in for ansible-test's pip bootstrap script (the official one is
# downloaded from ci-files.testing.ansible.com, unreachable offline):
# install pip with ensurepip, then let pip install the requested packages.
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
