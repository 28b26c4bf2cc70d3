"""kubesim: an HTTPS Kubernetes API emulator for gitferry's tests and local stack.

Real clients (kubectl, the official ``kubernetes`` Python client) are its judges;
see ``shared/KUBESIM.md`` for what they need. Never packaged into a Lambda.
"""
