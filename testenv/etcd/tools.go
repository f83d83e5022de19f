//go:build tools

// Package tools pins the etcd server that testenv builds: its main package
// is the module root go.etcd.io/etcd/server/v3.
package tools

import _ "go.etcd.io/etcd/server/v3"
