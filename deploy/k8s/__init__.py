"""Kubernetes manifests (kustomize) and the campaigns-as-ConfigMaps generator."""
