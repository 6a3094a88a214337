"""What the container tier (``make test-containers``) runs on: a private Docker engine, the
stand-in base images it builds from Debian packages, and the project's compose stack."""
