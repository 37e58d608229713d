"""A real local Kubernetes control plane built from source, with fake kwok nodes."""
