//go:build tools

// Package tools pins the Kubernetes server binaries that testenv builds.
// Nothing here is compiled into a program of ours: testenv/kube/build runs
// `go build` on the imported main packages.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
