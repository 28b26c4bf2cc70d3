"""The whole gitferry system on one machine: moto server, kubesim, git server, runner."""
