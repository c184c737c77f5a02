"""Environment cloning: derive a new stack file (`make clone-env`) and prove it offline (`make check-env`)."""
