"""gitferry engine: GitOps continuous delivery for Kubernetes on AWS Lambda.

Plain typed modules with I/O adapters at the edge; see docs/engine-design.md for
the module table. Import submodules directly (``from gitferry.model import
Application``) so a Lambda only loads what it uses.
"""

__version__ = "0.1.0"
